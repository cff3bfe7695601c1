// Log lines of an execution: levels ordered, filtered by a minimum level and a search text.

export interface LogLine {
  seq: number;
  executionId: string;
  taskRunId: string | null;
  taskId: string | null;
  attemptNumber: number | null;
  level: string;
  message: string;
  timestamp: string;
}

export const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"] as const;

export function rank(level: string): number {
  const normal = level.toUpperCase() === "WARNING" ? "WARN" : level.toUpperCase();
  const i = (LEVELS as readonly string[]).indexOf(normal);
  return i < 0 ? LEVELS.indexOf("INFO") : i;
}

export function filterLogs(lines: LogLine[], minLevel: string, search: string): LogLine[] {
  const floor = rank(minLevel);
  const needle = search.trim().toLowerCase();
  return lines.filter(
    (l) =>
      rank(l.level) >= floor &&
      (!needle || l.message.toLowerCase().includes(needle) || (l.taskId ?? "").toLowerCase().includes(needle)),
  );
}

/** Add lines by sequence number: a line seen twice (after a reconnect) is kept once. */
export function merge(lines: LogLine[], incoming: LogLine[]): LogLine[] {
  const seen = new Set(lines.map((l) => l.seq));
  const fresh = incoming.filter((l) => !seen.has(l.seq));
  if (fresh.length === 0) return lines;
  return [...lines, ...fresh].sort((a, b) => a.seq - b.seq);
}
