import { describe, expect, it } from "vitest";
import { filterLogs, merge, type LogLine } from "./logs";

function line(seq: number, level: string, message: string): LogLine {
  return { seq, executionId: "e", taskRunId: null, taskId: "t", attemptNumber: 1, level, message, timestamp: "" };
}

describe("filterLogs", () => {
  const lines = [line(1, "DEBUG", "detail"), line(2, "INFO", "hello"), line(3, "ERROR", "boom")];

  it("keeps lines at or above the minimum level", () => {
    expect(filterLogs(lines, "INFO", "").map((l) => l.seq)).toEqual([2, 3]);
  });

  it("searches messages case-insensitively", () => {
    expect(filterLogs(lines, "TRACE", "BOO").map((l) => l.seq)).toEqual([3]);
  });
});

describe("merge", () => {
  it("keeps a line sent twice once, in sequence order", () => {
    const merged = merge([line(1, "INFO", "a"), line(3, "INFO", "c")], [line(3, "INFO", "c"), line(2, "INFO", "b")]);
    expect(merged.map((l) => l.seq)).toEqual([1, 2, 3]);
  });
});
