import { stickyUniform } from '../shadow/sampler.js'

// Experiment assignment (issue #17), deterministic from the unit alone, so every replica, process
// and Node version puts a unit in the same place with no shared state. Both draws are the sticky
// sampler's hash, u(salt, key) = fmix32(fnv1a32(utf8(salt + ":" + key))) / 2^32 in [0, 1):
//
//   slot    = u("layer:" + layer, unit)          which share of the layer the unit falls in
//   variant = u("experiment:" + seed, unit)      where it falls among the variants' weights
//
// A layer's experiments own disjoint slot ranges in config order ([0, t1), [t1, t1 + t2), ...),
// so a unit is in at most one experiment per layer. Enrolment depends on the slot only and the
// variant on the second draw only: raising an experiment's traffic keeps every enrolled unit in
// its variant, and changing weights moves only the units between the old and new boundaries.
// Layers hash with their own salt, so the assignments of two layers are independent.

/** The unit's slot in a layer, in [0, 1). */
export function layerSlot (layer: string, unit: string): number {
  return stickyUniform(`layer:${layer}`, unit)
}

/** The unit's variant draw in an experiment, in [0, 1). */
export function variantDraw (seed: string, unit: string): number {
  return stickyUniform(`experiment:${seed}`, unit)
}

/** The variant index of a draw, given cumulative weight boundaries (the last is 1). */
export function variantIndex (draw: number, bounds: readonly number[]): number {
  for (let i = 0; i < bounds.length - 1; i++) if (draw < bounds[i]!) return i
  return bounds.length - 1
}
