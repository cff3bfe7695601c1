import { describe, expect, it } from "vitest";
import { parseProblem, toDiagnostics } from "./problems";

describe("parseProblem", () => {
  it("reads line, column, field and reason", () => {
    expect(parseProblem("flow.yaml:6:5: tasks[0].mesage: unknown property 'mesage'")).toEqual({
      line: 6,
      column: 5,
      field: "tasks[0].mesage",
      message: "unknown property 'mesage'",
      text: "flow.yaml:6:5: tasks[0].mesage: unknown property 'mesage'",
    });
  });

  it("gives null for a message without a position", () => {
    expect(parseProblem("the flow has 2 problem(s)")).toBeNull();
  });
});

describe("toDiagnostics", () => {
  const doc = "id: x\nnamespace: a\ntasks:\n  - id: t\n    mesage: hi\n";

  it("marks from the column to the end of the problem's line", () => {
    const [d] = toDiagnostics(doc, ["flow.yaml:5:5: tasks[0].mesage: unknown property"]);
    expect(doc.slice(d.from, d.to)).toBe("mesage: hi");
  });

  it("names the field in the message", () => {
    const [d] = toDiagnostics(doc, ["flow.yaml:5:5: tasks[0].mesage: unknown property"]);
    expect(d.message).toBe("tasks[0].mesage: unknown property");
  });

  it("puts a problem past the end on the last line", () => {
    const [d] = toDiagnostics("a: 1", ["f.yaml:40:1: x: y"]);
    expect(d.from).toBe(0);
  });

  it("puts a problem without a position on the first line", () => {
    const [d] = toDiagnostics(doc, ["something is wrong"]);
    expect([d.from, d.to, d.message]).toEqual([0, 5, "something is wrong"]);
  });
});
