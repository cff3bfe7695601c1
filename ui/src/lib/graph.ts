// A flow's topology: tasks as nodes, the order they run in as edges, flowable tasks (If,
// Switch, Parallel, ForEach, ...) opening branches that join again; laid out with dagre.
import dagre from "@dagrejs/dagre";
import type { FlowDefinition, TaskDef } from "./api";

export interface GraphNode {
  id: string;
  label: string;
  type: string;
  kind: "task" | "start" | "end" | "join" | "section";
  taskId?: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface GraphEdge {
  id: string;
  source: string;
  target: string;
  label?: string;
}

export interface Graph {
  nodes: GraphNode[];
  edges: GraphEdge[];
}

function isTask(value: unknown): value is TaskDef {
  if (!value || typeof value !== "object" || Array.isArray(value)) return false;
  const v = value as Record<string, unknown>;
  // A plugin type has a dot (plait.core.Log); input types (STRING, BOOLEAN) have none.
  return typeof v.id === "string" && typeof v.type === "string" && v.type.includes(".");
}

function isTaskList(value: unknown): value is TaskDef[] {
  return Array.isArray(value) && value.length > 0 && value.every(isTask);
}

const PARALLEL = /(^|\.)(Parallel|EachParallel)$/;

/** The branches a flowable task opens: a label and the tasks of each. */
export function branches(task: TaskDef): { label: string; tasks: TaskDef[] }[] {
  const out: { label: string; tasks: TaskDef[] }[] = [];
  for (const [key, value] of Object.entries(task)) {
    if (key === "id" || key === "type") continue;
    if (isTaskList(value)) {
      if (key === "tasks" && PARALLEL.test(task.type)) {
        for (const child of value) out.push({ label: "", tasks: [child] });
      } else {
        out.push({ label: key === "tasks" ? "" : key, tasks: value });
      }
    } else if (value && typeof value === "object" && !Array.isArray(value)) {
      for (const [caseKey, caseValue] of Object.entries(value as Record<string, unknown>)) {
        if (isTaskList(caseValue)) out.push({ label: caseKey, tasks: caseValue });
      }
    }
  }
  return out;
}

const TASK_W = 190;
const TASK_H = 52;
const SMALL = 16;

export function buildGraph(def: FlowDefinition | null | undefined): Graph {
  const nodes: Omit<GraphNode, "x" | "y">[] = [];
  const edges: GraphEdge[] = [];
  const seen = new Set<string>();
  let n = 0;
  const uid = (base: string) => {
    let id = base;
    while (seen.has(id)) id = `${base}~${++n}`;
    seen.add(id);
    return id;
  };
  const edge = (source: string, target: string, label?: string) =>
    edges.push({ id: `e${edges.length}:${source}->${target}`, source, target, label: label || undefined });

  function sequence(tasks: TaskDef[], entries: string[], firstLabel?: string): string[] {
    let exits = entries;
    let label = firstLabel;
    for (const task of tasks) {
      const id = uid(task.id);
      nodes.push({ id, label: task.id, type: task.type, kind: "task", taskId: task.id, width: TASK_W, height: TASK_H });
      for (const from of exits) edge(from, id, label);
      label = undefined;
      const children = branches(task);
      if (children.length === 0) {
        exits = [id];
        continue;
      }
      const join = uid(`${task.id}__end`);
      nodes.push({ id: join, label: "", type: "", kind: "join", width: SMALL, height: SMALL });
      for (const branch of children) {
        for (const last of sequence(branch.tasks, [id], branch.label)) edge(last, join);
      }
      exits = [join];
    }
    return exits;
  }

  const start = uid("__start");
  nodes.push({ id: start, label: "start", type: "", kind: "start", width: 56, height: 28 });
  const exits = sequence(def?.tasks ?? [], [start]);
  const end = uid("__end");
  nodes.push({ id: end, label: "end", type: "", kind: "end", width: 56, height: 28 });
  for (const from of exits) edge(from, end);
  for (const key of ["errors", "finally"] as const) {
    const list = def?.[key];
    if (!isTaskList(list)) continue;
    const head = uid(`__${key}`);
    nodes.push({ id: head, label: key === "errors" ? "on error" : "finally", type: "", kind: "section", width: 80, height: 28 });
    sequence(list, [head]);
  }
  return layout(nodes, edges);
}

function layout(nodes: Omit<GraphNode, "x" | "y">[], edges: GraphEdge[]): Graph {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 48, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of nodes) g.setNode(node.id, { width: node.width, height: node.height });
  for (const e of edges) g.setEdge(e.source, e.target);
  dagre.layout(g);
  return {
    nodes: nodes.map((node) => {
      const placed = g.node(node.id);
      // dagre gives centres; the graph view positions top-left corners.
      return { ...node, x: placed.x - node.width / 2, y: placed.y - node.height / 2 };
    }),
    edges,
  };
}

/** The state of each task id in an execution: its latest task run's. */
export function taskStates(runs: { taskId: string; state: { current: string } }[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const run of runs) out.set(run.taskId, run.state.current);
  return out;
}
