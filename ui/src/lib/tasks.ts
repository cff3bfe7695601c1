// Finding a task definition (e.g. the Pause task a paused execution waits in) in a flow.
import type { FlowDefinition, TaskDef } from "./api";

export function findTask(def: FlowDefinition | null | undefined, taskId: string): TaskDef | null {
  const stack: unknown[] = [def?.tasks, def?.errors, def?.finally];
  while (stack.length) {
    const item = stack.pop();
    if (Array.isArray(item)) stack.push(...item);
    else if (item && typeof item === "object") {
      const task = item as Record<string, unknown>;
      if (task.id === taskId && typeof task.type === "string" && task.type.includes(".")) return task as TaskDef;
      for (const value of Object.values(task)) if (value && typeof value === "object") stack.push(value);
    }
  }
  return null;
}
