export {
  type PrometheusMetrics,
  type PrometheusMetricsOptions,
  prometheusMetrics,
  type ReplayOutcome,
} from './prometheus-metrics.js';
