// The server's validation problems ("flow.yaml:4:5: tasks[0].message: reason") placed in a
// document, so the editor can mark each at its line.

export interface Located {
  line: number; // 1-based
  column: number; // 1-based
  field: string;
  message: string;
  text: string;
}

const PATTERN = /^(?:[^:\n]*):(\d+):(\d+): (?:([^:\s][^:]*?): )?(.*)$/s;

export function parseProblem(text: string): Located | null {
  const m = PATTERN.exec(text);
  if (!m) return null;
  return { line: Number(m[1]), column: Number(m[2]), field: m[3] ?? "", message: m[4], text };
}

export interface Diagnostic {
  from: number;
  to: number;
  severity: "error";
  message: string;
}

/** Offsets in ``doc`` for each problem (problems without a position go on the first line). */
export function toDiagnostics(doc: string, problems: string[]): Diagnostic[] {
  const starts = [0];
  for (let i = 0; i < doc.length; i++) if (doc[i] === "\n") starts.push(i + 1);
  return problems.map((text) => {
    const found = parseProblem(text);
    const lineIndex = Math.min(Math.max((found?.line ?? 1) - 1, 0), starts.length - 1);
    const lineStart = starts[lineIndex];
    const lineEnd = lineIndex + 1 < starts.length ? starts[lineIndex + 1] - 1 : doc.length;
    const from = Math.min(lineStart + Math.max((found?.column ?? 1) - 1, 0), lineEnd);
    const message = found ? (found.field ? `${found.field}: ${found.message}` : found.message) : text;
    return { from, to: Math.max(lineEnd, from), severity: "error", message };
  });
}
