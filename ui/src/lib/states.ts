// Execution and task run states: which are final, and how each is shown.

export const FINAL = new Set(["SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "SKIPPED"]);

export function isFinal(state: string): boolean {
  return FINAL.has(state);
}

export function tone(state: string): "ok" | "warn" | "bad" | "run" | "wait" | "idle" {
  switch (state) {
    case "SUCCESS":
      return "ok";
    case "WARNING":
      return "warn";
    case "FAILED":
    case "KILLED":
    case "CANCELLED":
      return "bad";
    case "RUNNING":
    case "KILLING":
    case "RETRYING":
      return "run";
    case "PAUSED":
    case "QUEUED":
    case "CREATED":
      return "wait";
    default:
      return "idle";
  }
}

export function duration(start: string | null, end: string | null, now = Date.now()): string {
  if (!start) return "";
  const ms = (end ? Date.parse(end) : now) - Date.parse(start);
  if (!Number.isFinite(ms) || ms < 0) return "";
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}
