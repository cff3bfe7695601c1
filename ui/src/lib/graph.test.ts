import { describe, expect, it } from "vitest";
import { branches, buildGraph, taskStates } from "./graph";

const approval = {
  id: "approval",
  namespace: "examples",
  tasks: [
    { id: "prepare", type: "plait.core.Log" },
    { id: "wait", type: "io.kestra.plugin.core.flow.Pause", onResume: [{ id: "approved", type: "BOOLEAN" }] },
    {
      id: "decide",
      type: "io.kestra.plugin.core.flow.If",
      then: [{ id: "release", type: "plait.core.Log" }],
      else: [{ id: "rejected", type: "plait.core.Fail" }],
    },
  ],
};

function pairs(def: Parameters<typeof buildGraph>[0]) {
  return buildGraph(def).edges.map((e) => `${e.source}>${e.target}${e.label ? `:${e.label}` : ""}`);
}

describe("buildGraph", () => {
  it("chains tasks and opens an If's branches that join again", () => {
    expect(pairs(approval)).toEqual([
      "__start>prepare",
      "prepare>wait",
      "wait>decide",
      "decide>release:then",
      "release>decide__end",
      "decide>rejected:else",
      "rejected>decide__end",
      "decide__end>__end",
    ]);
  });

  it("does not take a Pause's onResume inputs for tasks", () => {
    expect(branches(approval.tasks[1])).toEqual([]);
  });

  it("runs each task of a Parallel on its own branch", () => {
    const parallel = {
      id: "p",
      type: "io.kestra.plugin.core.flow.Parallel",
      tasks: [
        { id: "a", type: "plait.core.Log" },
        { id: "b", type: "plait.core.Log" },
      ],
    };
    expect(branches(parallel).map((b) => b.tasks.map((t) => t.id))).toEqual([["a"], ["b"]]);
  });

  it("labels a Switch's cases", () => {
    const sw = {
      id: "s",
      type: "io.kestra.plugin.core.flow.Switch",
      cases: { A: [{ id: "a", type: "plait.core.Log" }] },
      defaults: [{ id: "d", type: "plait.core.Log" }],
    };
    expect(branches(sw).map((b) => b.label)).toEqual(["A", "defaults"]);
  });

  it("places every node without overlap on its rank", () => {
    const nodes = buildGraph(approval).nodes;
    const release = nodes.find((n) => n.id === "release")!;
    const rejected = nodes.find((n) => n.id === "rejected")!;
    expect(Math.abs(release.y - rejected.y)).toBeGreaterThanOrEqual(release.height);
  });

  it("draws an empty flow as start and end", () => {
    expect(pairs({ id: "x", namespace: "y" })).toEqual(["__start>__end"]);
  });
});

describe("taskStates", () => {
  it("keeps the latest run of each task", () => {
    const runs = [
      { taskId: "a", state: { current: "FAILED" } },
      { taskId: "a", state: { current: "SUCCESS" } },
    ];
    expect(taskStates(runs).get("a")).toBe("SUCCESS");
  });
});
