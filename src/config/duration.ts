// Durations as marketers write them in YAML: "90s", "30m", "12h", "3d", "2w" (combinable: "1d12h").
const UNIT_MS: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

const DURATION = /^(\d+[smhdw])+$/;

export function isDuration(text: string): boolean {
  return DURATION.test(text.trim());
}

export function parseDuration(text: string): number {
  const t = text.trim();
  if (!DURATION.test(t)) throw new Error(`"${text}" is not a duration (expected e.g. 30m, 12h, 3d, 2w)`);
  let ms = 0;
  for (const m of t.matchAll(/(\d+)([smhdw])/g)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  return ms;
}
