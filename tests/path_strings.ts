/**
 * Strings that would change a PVE path if a segment carried them unchecked
 * (traversal, a separator, an encoded dot pair, query and fragment
 * starters, NUL and newline): what the path-safety tests send as ids.
 */
export const HOSTILE_SEGMENTS: readonly string[] = [
  "..",
  ".",
  "a/..",
  "%2e%2e",
  "/",
  "?x=",
  "#",
  "a\0b",
  "a\nb",
];
