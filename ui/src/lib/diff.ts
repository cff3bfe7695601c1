// The lines of a unified diff, each with its kind, for colouring.

export interface DiffLine {
  kind: "add" | "del" | "hunk" | "file" | "same";
  text: string;
}

export function diffLines(diff: string): DiffLine[] {
  return diff
    .replace(/\n$/, "")
    .split("\n")
    .map((text) => {
      if (text.startsWith("+++") || text.startsWith("---")) return { kind: "file", text };
      if (text.startsWith("@@")) return { kind: "hunk", text };
      if (text.startsWith("+")) return { kind: "add", text };
      if (text.startsWith("-")) return { kind: "del", text };
      return { kind: "same", text };
    });
}
