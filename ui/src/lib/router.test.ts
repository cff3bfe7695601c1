import { describe, expect, it } from "vitest";
import { parse } from "./router";

describe("parse", () => {
  it.each([
    ["/ui", { page: "flows" }],
    ["/ui/", { page: "flows" }],
    ["/ui/login", { page: "login" }],
    ["/ui/flows/new", { page: "new-flow" }],
    ["/ui/flows/company.team/greet", { page: "flow", namespace: "company.team", id: "greet", tab: "topology" }],
    ["/ui/flows/company.team/greet/editor", { page: "flow", namespace: "company.team", id: "greet", tab: "editor" }],
    ["/ui/executions", { page: "executions" }],
    ["/ui/executions/abc", { page: "execution", id: "abc" }],
    ["/ui/nope/x/y", { page: "not-found", path: "/ui/nope/x/y" }],
  ])("%s", (path, route) => {
    expect(parse(path)).toEqual(route);
  });
});
