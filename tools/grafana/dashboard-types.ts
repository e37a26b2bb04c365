// The type every dashboard in deploy/monitoring/grafana/dashboards must have.
// tests/monitoring/test_monitoring_grafana.py writes each dashboard JSON into a
// TypeScript file as `const dashboard: PingpongDashboard = <json>;` and runs
// `tsc --noEmit`: a missing required field, a wrong type or an unknown property
// (object literals get excess-property checks) fails the test.
import type {
  AnnotationContainer,
  AnnotationQuery,
  Dashboard,
  DataQuery,
  Panel,
  RowPanel,
} from '@grafana/schema';

// The query model of Grafana's Prometheus data source, as far as these
// dashboards use it (@grafana/schema leaves panel targets untyped).
export interface PrometheusQuery extends DataQuery {
  expr: string;
  legendFormat?: string;
  range?: boolean;
  instant?: boolean;
  interval?: string;
}

type PrometheusPanel = Omit<Panel, 'targets'> & { targets?: PrometheusQuery[] };
type PrometheusRow = Omit<RowPanel, 'panels'> & { panels: PrometheusPanel[] };

// JSON has no enums: turn each string enum of the schema (ThresholdsMode,
// MappingType, ...) into the union of its string values, everywhere inside T.
// Numeric enums accept their number literals as they are.
type Json<T> = T extends string
  ? `${T}`
  : T extends readonly (infer U)[]
    ? Json<U>[]
    : T extends object
      ? { [K in keyof T]: Json<T[K]> }
      : T;

export type PingpongDashboard = Json<
  Omit<Dashboard, 'annotations' | 'panels'> & {
    annotations?: Omit<AnnotationContainer, 'list'> & { list?: AnnotationQuery<PrometheusQuery>[] };
    panels?: Array<PrometheusPanel | PrometheusRow>;
  }
>;
