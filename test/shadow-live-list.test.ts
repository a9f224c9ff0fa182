import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LiveList, type LiveLinks } from '../src/shadow/live-list.js'

// Issue #3: the list of shadow calls in flight (graceful shutdown abandons what is left in it).

class Item implements LiveLinks<Item> {
  liveNext: Item | null = null
  livePrev: Item | null = null
  constructor (readonly n: number) {}
}

const ns = (l: LiveList<Item>): number[] => l.toArray().map((x) => x.n)

test('add and remove in any order keep the others, newest first, and the size', () => {
  const l = new LiveList<Item>()
  const xs = [0, 1, 2, 3, 4].map((n) => new Item(n))
  for (const x of xs) l.add(x)
  assert.deepEqual(ns(l), [4, 3, 2, 1, 0])
  assert.equal(l.remove(xs[2]!), true) // middle
  assert.equal(l.remove(xs[4]!), true) // head
  assert.equal(l.remove(xs[0]!), true) // tail
  assert.deepEqual(ns(l), [3, 1])
  assert.equal(l.size, 2)
  assert.equal(l.remove(xs[3]!), true)
  assert.equal(l.remove(xs[1]!), true)
  assert.deepEqual(ns(l), [])
  assert.equal(l.size, 0)
})

test('a removed element keeps no link, and removing it again (or one never added) changes nothing', () => {
  const l = new LiveList<Item>()
  const [a, b, c] = [new Item(1), new Item(2), new Item(3)]
  l.add(a); l.add(b); l.add(c)
  assert.equal(l.remove(b), true)
  assert.equal(b.liveNext, null)
  assert.equal(b.livePrev, null)
  assert.equal(l.remove(b), false)
  assert.equal(l.remove(new Item(9)), false)
  assert.equal(l.size, 2)
  assert.deepEqual(ns(l), [3, 1])
})

test('toArray is a snapshot: elements may remove themselves while it is walked', () => {
  const l = new LiveList<Item>()
  for (let n = 0; n < 100; n++) l.add(new Item(n))
  for (const x of l.toArray()) l.remove(x)
  assert.equal(l.size, 0)
  assert.deepEqual(ns(l), [])
})
