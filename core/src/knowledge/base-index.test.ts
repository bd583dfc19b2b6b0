import t from 'tap'
import { readFloat4Array } from './base-index.js'

/** `array_send` of a one-dimensional real[]: 1 dimension, no nulls, float4's oid, size, lower bound, then (4, value) each. */
function arraySend(values: number[], { dims = 1, len = 4 } = {}): Uint8Array {
  const b = new DataView(new ArrayBuffer(20 + values.length * 8))
  b.setInt32(0, dims)
  b.setInt32(4, 0)
  b.setInt32(8, 700)
  b.setInt32(12, values.length)
  b.setInt32(16, 1)
  for (const [i, x] of values.entries()) {
    b.setInt32(20 + i * 8, len)
    b.setFloat32(24 + i * 8, x)
  }
  return new Uint8Array(b.buffer)
}

t.test('a real[] in binary form is read exactly, at its place', async (t) => {
  const values = [0.1, -0.25, 3.4028234663852886e38, 0, -1e-7]
  const out = new Float32Array(10)
  t.ok(readFloat4Array(arraySend(values), 5, out, 5))
  t.same([...out.subarray(5)], values.map(Math.fround))
  t.same([...out.subarray(0, 5)], [0, 0, 0, 0, 0], 'nothing written before its place')
})

t.test('anything but a one-dimensional array of the size without nulls is refused', async (t) => {
  const out = new Float32Array(8)
  t.notOk(readFloat4Array(arraySend([1, 2, 3]), 4, out, 0), 'another size')
  t.notOk(readFloat4Array(arraySend([1, 2, 3, 4], { dims: 2 }), 4, out, 0), 'two dimensions')
  t.notOk(readFloat4Array(arraySend([1, 2, 3, 4], { len: -1 }), 4, out, 0), 'a null element')
  t.notOk(readFloat4Array(new Uint8Array(12), 0, out, 0), 'an empty array')
  t.notOk(readFloat4Array(arraySend([1, 2, 3, 4]).subarray(0, 30), 4, out, 0), 'cut short')
})
