// The Wilson interval moved to src/analysis/ with the rest of the statistics (#17, #18).
export { wilson, Z_95, type ProportionInterval } from '../analysis/wilson.js'
