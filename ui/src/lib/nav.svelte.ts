// The current route, kept in step with the address bar (history API, no reloads).
import { parse, type Route } from "./router";

class Navigation {
  route: Route = $state(parse(location.pathname));
  search: string = $state(location.search);

  constructor() {
    addEventListener("popstate", () => this.sync());
  }

  sync(): void {
    this.route = parse(location.pathname);
    this.search = location.search;
  }

  go(path: string, replace = false): void {
    if (replace) history.replaceState(null, "", path);
    else history.pushState(null, "", path);
    this.sync();
    scrollTo(0, 0);
  }
}

export const nav = new Navigation();

/** Follow an in-app link without a reload (a modified click opens a tab as usual). */
export function link(event: MouseEvent): void {
  const anchor = (event.currentTarget as HTMLAnchorElement | null) ?? null;
  if (!anchor || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  nav.go(anchor.getAttribute("href") ?? "/ui");
}

/** A message for the next page (e.g. "Saved" after a new flow's page replaced the editor). */
export const flash = { message: "" };
