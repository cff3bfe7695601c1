// The API client: every call goes to /api/v1 of the server that serves the UI, authenticated
// by the session cookie (with the login's CSRF token on unsafe methods) or by a bearer token.

export type Auth =
  | { kind: "session"; csrf: string; name: string; role: string }
  | { kind: "token"; token: string; name: string; role: string };

export interface ApiProblem {
  message: string;
  problems: string[];
  status: number;
}

export class ApiError extends Error {
  status: number;
  problems: string[];
  constructor(status: number, message: string, problems: string[] = []) {
    super(message);
    this.status = status;
    this.problems = problems;
  }
}

const KEY = "plait.auth";
// Kept per browser tab: the token or CSRF token never reaches localStorage or a cookie the
// page can read from another tab after it closes.
let current: Auth | null = loadAuth();

function loadAuth(): Auth | null {
  try {
    const raw = globalThis.sessionStorage?.getItem(KEY);
    return raw ? (JSON.parse(raw) as Auth) : null;
  } catch {
    return null;
  }
}

export function auth(): Auth | null {
  return current;
}

export function setAuth(value: Auth | null): void {
  current = value;
  if (value) globalThis.sessionStorage?.setItem(KEY, JSON.stringify(value));
  else globalThis.sessionStorage?.removeItem(KEY);
}

export const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** The headers that authenticate a request with ``method`` under ``who``. */
export function authHeaders(who: Auth | null, method: string): Record<string, string> {
  if (!who) return {};
  if (who.kind === "token") return { Authorization: `Bearer ${who.token}` };
  return UNSAFE.has(method.toUpperCase()) ? { "X-CSRF-Token": who.csrf } : {};
}

let onUnauthorized: () => void = () => {};
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

export interface RequestOptions {
  method?: string;
  body?: BodyInit | null;
  json?: unknown;
  contentType?: string;
  signal?: AbortSignal;
}

export async function request<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const method = options.method ?? "GET";
  const headers: Record<string, string> = { Accept: "application/json", ...authHeaders(current, method) };
  let body = options.body ?? null;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    headers["Content-Type"] = "application/json";
  } else if (options.contentType) {
    headers["Content-Type"] = options.contentType;
  }
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body,
    credentials: "same-origin",
    signal: options.signal,
  });
  const text = await response.text();
  const data = text ? safeJson(text) : null;
  if (!response.ok) {
    const problem = (data ?? {}) as Partial<ApiProblem>;
    if (response.status === 401 && !path.startsWith("/auth/login")) onUnauthorized();
    throw new ApiError(
      response.status,
      problem.message ?? `${response.status} ${response.statusText}`,
      problem.problems ?? [],
    );
  }
  return data as T;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text };
  }
}

export function q(params: Record<string, string | string[] | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) search.append(key, v);
  }
  const s = search.toString();
  return s ? `?${s}` : "";
}

export const enc = encodeURIComponent;

// -- shapes (Kestra's, as the server answers) ------------------------------------------------

export interface StateOut {
  current: string;
  histories: { state: string; date: string }[];
  startDate: string | null;
  endDate: string | null;
}

export interface FlowSummary {
  id: string;
  namespace: string;
  revision: number;
  created: string;
  deleted: boolean;
}

export interface FlowOut extends FlowSummary {
  disabled: boolean;
  description: string | null;
  labels: Record<string, unknown>;
  source: string;
  definition: FlowDefinition;
}

export interface InputDef {
  id: string;
  type: string;
  description?: string | null;
  displayName?: string | null;
  required?: boolean;
  defaults?: unknown;
  values?: string[] | null;
  min?: unknown;
  max?: unknown;
  itemType?: string | null;
}

export interface TaskDef {
  id: string;
  type: string;
  [key: string]: unknown;
}

export interface FlowDefinition {
  id: string;
  namespace: string;
  inputs?: InputDef[];
  tasks?: TaskDef[];
  errors?: TaskDef[];
  finally?: TaskDef[];
  triggers?: TaskDef[];
  [key: string]: unknown;
}

export interface TaskRun {
  id: string;
  executionId: string;
  taskId: string;
  parentTaskRunId: string | null;
  value: unknown;
  iteration: number | null;
  state: StateOut;
  attempts: { number: number; state: string; started: string | null; ended: string | null; error: string | null }[];
  outputs: Record<string, unknown>;
  error: string | null;
}

export interface Execution {
  id: string;
  namespace: string;
  flowId: string;
  flowRevision: number;
  state: StateOut;
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown>;
  labels: { key: string; value: string }[];
  error: string | null;
  parentId: string | null;
  originalId: string | null;
  taskRunList: TaskRun[];
}

export interface Me {
  name: string;
  role: string;
  namespace: string | null;
  csrfToken?: string | null;
}
