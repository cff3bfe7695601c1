import { describe, expect, it } from "vitest";
import { fieldOf, fieldsOf, formData } from "./inputs";

describe("fieldOf", () => {
  it("makes a required text field of a STRING without a default", () => {
    const f = fieldOf({ id: "name", type: "STRING" });
    expect([f.control, f.required, f.initial]).toEqual(["text", true, ""]);
  });

  it("makes an optional field of an input with a default", () => {
    const f = fieldOf({ id: "n", type: "INT", defaults: 3 });
    expect([f.control, f.required, f.initial, f.step]).toEqual(["number", false, "3", "1"]);
  });

  it("makes a checkbox of a BOOLEAN, checked by its default", () => {
    const f = fieldOf({ id: "approved", type: "BOOLEAN", defaults: true });
    expect([f.control, f.required, f.initial]).toEqual(["checkbox", false, true]);
  });

  it("offers the values of a SELECT", () => {
    expect(fieldOf({ id: "env", type: "SELECT", values: ["dev", "prod"] }).options).toEqual(["dev", "prod"]);
  });

  it("labels a field with its displayName", () => {
    expect(fieldOf({ id: "x", type: "STRING", displayName: "The X" }).label).toBe("The X");
  });
});

describe("formData", () => {
  it("sends booleans as true/false and leaves empty optional fields out", () => {
    const fields = fieldsOf([
      { id: "approved", type: "BOOLEAN" },
      { id: "reason", type: "STRING", defaults: "x" },
      { id: "when", type: "DATETIME" },
    ]);
    const body = formData(fields, { approved: false, reason: "", when: "2026-01-02T03:04" });
    expect([...body.entries()]).toEqual([
      ["approved", "false"],
      ["when", "2026-01-02T03:04:00"],
    ]);
  });
});
