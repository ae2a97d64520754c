// Opset conversion of the default domain (issue 15): convertOpset and its tables.
export { convertOpset, conversionLine, MIN_SOURCE_OPSET, type ConversionEntry, type ConversionSummary } from './convert.js';
export { ADAPTERS, ruleFor } from './registry.js';
export { UNCHANGED, NOT_CONVERTED } from './unchanged.js';
export { SCHEMA_VERSIONS, MAX_OPSET, schemaVersion } from './schemas.js';
