import { describe, expect, it } from "vitest";
import { SseParser } from "./sse";

describe("SseParser", () => {
  it("parses events split across chunks", () => {
    const parser = new SseParser();
    expect(parser.push('id: 2\ndata: {"seq"')).toEqual([]);
    expect(parser.push(':2}\n\nevent: end\ndata: SUCCESS\n\n')).toEqual([
      { event: "message", data: '{"seq":2}', id: "2" },
      { event: "end", data: "SUCCESS", id: "2" },
    ]);
  });

  it("remembers the last event id for a reconnect", () => {
    const parser = new SseParser();
    parser.push("id: 7\ndata: x\n\n");
    expect(parser.lastId).toBe("7");
  });

  it("joins multi-line data and ignores comments and CRLF", () => {
    const parser = new SseParser();
    expect(parser.push(": ping\r\ndata: a\r\ndata: b\r\n\r\n")).toEqual([{ event: "message", data: "a\nb", id: null }]);
  });
});
