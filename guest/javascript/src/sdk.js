/**
 * Everything the SDK offers, without the host's imports: what `index.js` re-exports inside a
 * component, and what node tests load (after installing a fake host with `setHost`).
 * @module
 */
export { setHost } from './host.js';
export { Findings } from './findings.js';
export { definePolicy } from './policy.js';
export { Change, Request } from './request.js';
export { Pattern, Patterns } from './pattern.js';
export { TagOrder, annotation, image, repository } from './facts.js';
export { Instant, Period, TimeOfDay, WEEKDAYS, parseWeekday } from './time.js';
export { Series, Version, newestRelease, release, releasePattern, series } from './tags.js';
export * as settings from './settings.js';
export { SettingsError } from './settings.js';
