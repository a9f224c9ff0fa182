// A comparison thread that dies on a job whose requestId is "crash" and otherwise behaves like
// the real one (test/compare-worker.test.ts). ESM evaluates imports in order, so the hook's
// listener comes first and the crash precedes any answer.
import './crash-hook.js'
import '../../src/compare/compare-thread.js'
