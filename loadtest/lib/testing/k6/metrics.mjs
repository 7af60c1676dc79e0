// Shim of 'k6/metrics': records every sample with its tags into sim.metrics.
import { sim } from '../sim.mjs';

class Metric {
  constructor(type, name, isTime) {
    if (!/^[a-zA-Z_][a-zA-Z0-9_]{0,127}$/.test(name)) throw new Error(`invalid k6 metric name ${name}`);
    this.type = type;
    this.name = name;
    this.isTime = !!isTime;
    sim.declare(name, type);
  }

  add(value, tags) {
    if (typeof value === 'boolean') value = value ? 1 : 0;
    if (typeof value !== 'number' || Number.isNaN(value)) throw new Error(`${this.name}.add(${value}): not a number`);
    if (tags) {
      for (const k of Object.keys(tags)) {
        if (typeof tags[k] !== 'string') throw new Error(`${this.name} tag ${k} must be a string (k6 drops others)`);
      }
    }
    sim.record(this.name, value, tags || {});
  }
}

export class Counter extends Metric { constructor(n, t) { super('counter', n, t); } }
export class Trend extends Metric { constructor(n, t) { super('trend', n, t); } }
export class Rate extends Metric { constructor(n, t) { super('rate', n, t); } }
export class Gauge extends Metric { constructor(n, t) { super('gauge', n, t); } }

export default { Counter, Trend, Rate, Gauge };
