/**
 * Metrics over closed label sets (every value one of LABEL_VALUES, else `other`), kept as plain
 * numbers: a series is an index into a table, found with one Map lookup per label. prom-client
 * validates and hashes the labels of every observation (sorted names, a string built per call),
 * which cost about 4 µs of each review's answer. They register into a prom-client Registry and
 * print exactly as its Counter, Histogram and Gauge do; metrics without labels stay prom-client's.
 */
import type { Metric, MetricObjectWithValues, MetricValueWithName, Registry } from 'prom-client';

/** The value a label takes when what it was given is none of its known values. */
export const OTHER = 'other';

type Exported = MetricObjectWithValues<MetricValueWithName<string>>;

/** One label of a closed set: its values (`other` last), their positions, its place in a series number. */
interface LabelSlot<L extends string> {
  readonly name: L;
  readonly values: readonly string[];
  readonly positions: ReadonlyMap<string, number>;
  readonly stride: number;
}

/** Label values of a closed set, mapped to one series number (unknown values count as `other`). */
class SeriesIndex<L extends string> {
  private readonly slots: readonly LabelSlot<L>[];

  constructor(known: Readonly<Record<L, readonly string[]>>) {
    let stride = 1;
    this.slots = (Object.keys(known) as L[]).map((name) => {
      const values = [...known[name], OTHER];
      const slot = { name, values, positions: new Map(values.map((v, i) => [v, i] as const)), stride };
      stride *= values.length;
      return slot;
    });
  }

  /** The series of these label values (strings or numbers, as prom-client takes them). */
  of(labels: Readonly<Record<L, string | number>>): number {
    let index = 0;
    for (const slot of this.slots) {
      const raw = labels[slot.name];
      const at = slot.positions.get(typeof raw === 'string' ? raw : String(raw));
      index += (at ?? slot.values.length - 1) * slot.stride;
    }
    return index;
  }

  /** The label values of a series, in the declared label order. */
  labels(index: number): Record<string, string> {
    const out: Record<string, string> = {};
    for (const slot of this.slots)
      out[slot.name] = slot.values[Math.floor(index / slot.stride) % slot.values.length] ?? OTHER;
    return out;
  }
}

interface Described {
  readonly name: string;
  readonly help: string;
  readonly registers: readonly Registry[];
}

type Value = MetricValueWithName<string> | { labels: Record<string, string>; value: number };

/** What prom-client's Registry reads of a metric: name, help, type and get(). */
abstract class RegisteredMetric {
  readonly aggregator = 'sum';
  readonly name: string;
  readonly help: string;

  constructor(
    readonly type: 'counter' | 'histogram' | 'gauge',
    o: Described,
  ) {
    this.name = o.name;
    this.help = o.help;
    for (const r of o.registers) r.registerMetric(this as unknown as Metric);
  }

  abstract reset(): void;

  /** The series as prom-client's own metric of this type lists them. */
  protected abstract values(): Value[];

  get(): Promise<Exported> {
    const { name, help, type } = this;
    return Promise.resolve({
      name,
      help,
      type,
      aggregator: 'sum',
      values: this.values(),
    } as unknown as Exported);
  }
}

/** One number per series of closed labels, in the order first set (as prom-client prints them). */
abstract class ClosedValues<L extends string> extends RegisteredMetric {
  private readonly index: SeriesIndex<L>;
  protected series = new Map<number, number>();

  constructor(
    type: 'counter' | 'gauge',
    o: Described & { readonly labels: Readonly<Record<L, readonly string[]>> },
  ) {
    super(type, o);
    this.index = new SeriesIndex(o.labels);
  }

  /** The series number of `labels` (unknown values count as `other`). */
  protected seriesOf(labels: Readonly<Record<L, string | number>>): number {
    return this.index.of(labels);
  }

  reset(): void {
    this.series = new Map();
  }

  protected values(): Value[] {
    return [...this.series].map(([i, value]) => ({ labels: this.index.labels(i), value }));
  }
}

/** A counter over closed labels: inc() is one index lookup and one addition. */
export class ClosedCounter<L extends string> extends ClosedValues<L> {
  constructor(o: Described & { readonly labels: Readonly<Record<L, readonly string[]>> }) {
    super('counter', o);
  }

  /** Adds `by` (default 1; a negative or non-finite amount is ignored) to the series of `labels`. */
  inc(labels: Readonly<Record<L, string | number>>, by = 1): void {
    if (!(by >= 0) || by === Infinity) return;
    const i = this.seriesOf(labels);
    this.series.set(i, (this.series.get(i) ?? 0) + by);
  }
}

/** A gauge over closed labels, set series by series (reset() forgets them all). */
export class ClosedGauge<L extends string> extends ClosedValues<L> {
  constructor(o: Described & { readonly labels: Readonly<Record<L, readonly string[]>> }) {
    super('gauge', o);
  }

  /** Sets the series of `labels` (a non-finite value is ignored). */
  set(labels: Readonly<Record<L, string | number>>, value: number): void {
    if (Number.isFinite(value)) this.series.set(this.seriesOf(labels), value);
  }
}

interface HistogramSeries {
  /** Observations per bucket (not cumulative); the last slot is past the highest bound (+Inf). */
  readonly counts: number[];
  sum: number;
  count: number;
}

/** A histogram over closed labels: observe() is one index lookup, a bucket search and three additions. */
export class ClosedHistogram<L extends string> extends RegisteredMetric {
  private readonly index: SeriesIndex<L>;
  private readonly bounds: readonly number[];
  private series = new Map<number, HistogramSeries>();

  constructor(
    o: Described & {
      readonly labels: Readonly<Record<L, readonly string[]>>;
      /** Upper bounds, ascending. */
      readonly buckets: readonly number[];
    },
  ) {
    super('histogram', o);
    this.index = new SeriesIndex(o.labels);
    this.bounds = [...o.buckets].sort((a, b) => a - b);
  }

  /** Records one value (a non-finite one is ignored: a metric never throws on the request path). */
  observe(labels: Readonly<Record<L, string | number>>, value: number): void {
    if (!Number.isFinite(value)) return;
    const i = this.index.of(labels);
    let s = this.series.get(i);
    if (s === undefined) {
      s = { counts: new Array<number>(this.bounds.length + 1).fill(0), sum: 0, count: 0 };
      this.series.set(i, s);
    }
    let b = 0;
    for (const bound of this.bounds) {
      if (value <= bound) break;
      b++;
    }
    s.counts[b] = (s.counts[b] ?? 0) + 1;
    s.sum += value;
    s.count++;
  }

  reset(): void {
    this.series = new Map();
  }

  /** prom-client's shape: per series its cumulative buckets (le first), +Inf, _sum and _count. */
  protected values(): Value[] {
    const values: Value[] = [];
    const bucket = `${this.name}_bucket`;
    for (const [i, s] of this.series) {
      const sharedLabels = this.index.labels(i);
      let acc = 0;
      this.bounds.forEach((le, b) => {
        acc += s.counts[b] ?? 0;
        values.push({ labels: { le }, value: acc, metricName: bucket, sharedLabels } as never);
      });
      values.push(
        { labels: { le: '+Inf' }, value: s.count, metricName: bucket, sharedLabels } as never,
        { labels: {}, value: s.sum, metricName: `${this.name}_sum`, sharedLabels } as never,
        { labels: {}, value: s.count, metricName: `${this.name}_count`, sharedLabels } as never,
      );
    }
    return values;
  }
}

/** A gauge without labels kept as a number (requests in flight): inc() and dec() are one addition. */
export class LevelGauge extends RegisteredMetric {
  private value = 0;

  constructor(o: Described) {
    super('gauge', o);
  }

  inc(): void {
    this.value++;
  }

  dec(): void {
    this.value--;
  }

  reset(): void {
    this.value = 0;
  }

  protected values(): Value[] {
    return [{ labels: {}, value: this.value }];
  }
}
