import { useEffect, useRef } from 'react'
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'

/**
 * A metric's series as a uPlot line chart (drawn on a canvas), with the same points in a
 * visually hidden table for screen readers.
 */
export default function SeriesChart(props: { title: string; points: Array<{ period: string; value: number }> }) {
  const box = useRef<HTMLDivElement>(null)
  useEffect(() => {
    const el = box.current
    if (!el) return
    const xs = props.points.map((p) => Date.parse(`${p.period}T00:00:00Z`) / 1000)
    const ys = props.points.map((p) => p.value)
    const chart = new uPlot(
      {
        width: Math.max(320, el.clientWidth),
        height: 220,
        legend: { show: false },
        series: [{}, { label: props.title, stroke: getComputedStyle(el).getPropertyValue('--brand') || '#1d4f91' }],
        axes: [{}, {}],
      },
      [xs, ys],
      el,
    )
    return () => chart.destroy()
  }, [props.points, props.title])
  return (
    <>
      <div ref={box} aria-hidden="true" className="chart" />
      <table className="sr-only">
        <caption>{props.title}</caption>
        <tbody>
          {props.points.map((p) => (
            <tr key={p.period}>
              <th scope="row">{p.period}</th>
              <td>{p.value}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  )
}
