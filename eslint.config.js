// eslint with neostandard (standard style, TypeScript-aware). `npm run lint`; CI runs it.
import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', '.build/**', 'node_modules/**', 'bench/results/**']
  }),
  {
    rules: {
      // `void promise` marks a deliberate fire-and-forget (its errors are handled inside); as a
      // statement only, never to produce `undefined`.
      'no-void': ['error', { allowAsStatement: true }],
      // Flags loops on a flag that another async task flips (`while (!stop) await ...`): the
      // rule cannot see across awaits, and every hit in this tree was that pattern.
      'no-unmodified-loop-condition': 'off',
      // Descriptive names (`resolvePort`) say which promise resolves, in files with several.
      'promise/param-names': 'off'
    }
  }
]
