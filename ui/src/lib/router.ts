// Client-side routes under /ui (the server answers index.html for every one of them).

export type Route =
  | { page: "login" }
  | { page: "flows" }
  | { page: "new-flow" }
  | { page: "flow"; namespace: string; id: string; tab: string }
  | { page: "executions" }
  | { page: "execution"; id: string }
  | { page: "not-found"; path: string };

export const BASE = "/ui";

export function parse(pathname: string): Route {
  let path = pathname.startsWith(BASE) ? pathname.slice(BASE.length) : pathname;
  path = path.replace(/\/+$/, "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0) return { page: "flows" };
  const [head, ...rest] = parts;
  if (head === "login" && rest.length === 0) return { page: "login" };
  if (head === "flows") {
    if (rest.length === 0) return { page: "flows" };
    if (rest.length === 1 && rest[0] === "new") return { page: "new-flow" };
    if (rest.length === 2 || rest.length === 3) {
      return { page: "flow", namespace: rest[0], id: rest[1], tab: rest[2] ?? "topology" };
    }
  }
  if (head === "executions") {
    if (rest.length === 0) return { page: "executions" };
    if (rest.length === 1) return { page: "execution", id: rest[0] };
  }
  return { page: "not-found", path: pathname };
}

export function href(...parts: string[]): string {
  return `${BASE}/${parts.map(encodeURIComponent).join("/")}`;
}
