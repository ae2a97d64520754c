// The package version, reported by --version and in every report.
export const VERSION = '0.1.0';
