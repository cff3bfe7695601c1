import { describe, expect, it } from "vitest";
import { authHeaders, q } from "./api";

describe("authHeaders", () => {
  it("sends a token on every request", () => {
    expect(authHeaders({ kind: "token", token: "plait_x", name: "", role: "" }, "GET")).toEqual({
      Authorization: "Bearer plait_x",
    });
  });

  it("sends the CSRF token of a session on unsafe methods only", () => {
    const session = { kind: "session", csrf: "c", name: "ada", role: "editor" } as const;
    expect([authHeaders(session, "GET"), authHeaders(session, "delete")]).toEqual([{}, { "X-CSRF-Token": "c" }]);
  });
});

describe("q", () => {
  it("repeats list parameters and leaves empty ones out", () => {
    expect(q({ namespace: "", labels: ["a:1", "b:2"], size: "5" })).toBe("?labels=a%3A1&labels=b%3A2&size=5");
  });
});
