// penumbra's public API, for embedding it in a Node.js program (the CLI is one such program).
// Everything else under src/ is internal and may change between versions.
export { Penumbra, VERSION, backendRoles, type PenumbraOptions, type PrimarySwitchRequest } from './app.js'
export type { Config } from './config/schema.js'
export { configWarnings } from './config/schema.js'
export { loadConfigFile, validateConfig, ConfigError } from './config/load.js'
export { PenumbraError, ErrorCodes, type ErrorCode } from './errors.js'
export { stickyUniform } from './shadow/sampler.js'
export type { PrimaryStatus, PrimarySwitch } from './runtime/primary-selection.js'
export { createLogger, type Logger } from './log/logger.js'
export { Metrics } from './metrics/metrics.js'
export type { AccuracySource } from './rollout/canary.js'
export { analyse as analyseCanary, type CanaryState, type CanaryTotals, type CanaryDecision, type GateVerdict } from './rollout/canary-engine.js'
