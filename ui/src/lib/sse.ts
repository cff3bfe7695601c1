// Server-Sent Events over fetch (not EventSource: a bearer token must go in a header), with
// reconnection from the last event id, as the server's log stream supports.
import { auth, authHeaders } from "./api";

export interface SseEvent {
  event: string;
  data: string;
  id: string | null;
}

/** An incremental parser of the text/event-stream format. */
export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private event = "";
  private id: string | null = null;
  lastId: string | null = null;

  push(chunk: string): SseEvent[] {
    this.buffer += chunk;
    const out: SseEvent[] = [];
    let newline: number;
    while ((newline = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, newline);
      const width = this.buffer.startsWith("\r\n", newline) ? 2 : 1;
      this.buffer = this.buffer.slice(newline + width);
      if (line === "") {
        if (this.data.length > 0) {
          out.push({ event: this.event || "message", data: this.data.join("\n"), id: this.id });
        }
        if (this.id !== null) this.lastId = this.id;
        this.data = [];
        this.event = "";
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") this.data.push(value);
      else if (field === "event") this.event = value;
      else if (field === "id") this.id = value;
    }
    return out;
  }
}

export interface FollowHandlers {
  onEvent: (event: SseEvent) => void;
  onError?: (error: unknown) => void;
}

/** Follow ``path`` until an ``end`` event or ``signal`` aborts; reconnects after a drop. */
export async function follow(path: string, handlers: FollowHandlers, signal: AbortSignal): Promise<void> {
  const parser = new SseParser();
  let ended = false;
  let delay = 500;
  while (!ended && !signal.aborted) {
    try {
      const headers: Record<string, string> = { Accept: "text/event-stream", ...authHeaders(auth(), "GET") };
      if (parser.lastId !== null) headers["Last-Event-ID"] = parser.lastId;
      const response = await fetch(`/api/v1${path}`, { headers, signal, credentials: "same-origin" });
      if (!response.ok || !response.body) throw new Error(`log stream: HTTP ${response.status}`);
      delay = 500;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        for (const event of parser.push(value)) {
          handlers.onEvent(event);
          if (event.event === "end") ended = true;
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      handlers.onError?.(error);
    }
    if (!ended && !signal.aborted) {
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  }
}
