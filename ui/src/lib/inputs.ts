// A form generated from typed inputs (a flow's `inputs`, a Pause task's `onResume`), sent as
// multipart form fields as the API takes them (a FILE input as a file part).
import type { InputDef } from "./api";

export type Control =
  | "text"
  | "number"
  | "checkbox"
  | "select"
  | "multiselect"
  | "datetime-local"
  | "date"
  | "time"
  | "textarea"
  | "file"
  | "password"
  | "url"
  | "email";

export interface Field {
  id: string;
  label: string;
  type: string;
  control: Control;
  required: boolean;
  description: string;
  options: string[];
  step?: string;
  min?: string;
  max?: string;
  initial: string | boolean | string[];
}

const CONTROLS: Record<string, Control> = {
  STRING: "text",
  INT: "number",
  FLOAT: "number",
  BOOLEAN: "checkbox",
  DATETIME: "datetime-local",
  DATE: "date",
  TIME: "time",
  DURATION: "text",
  JSON: "textarea",
  YAML: "textarea",
  ARRAY: "textarea",
  URI: "url",
  EMAIL: "email",
  FILE: "file",
  ENUM: "select",
  SELECT: "select",
  MULTISELECT: "multiselect",
  SECRET: "password",
};

function text(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

export function fieldOf(input: InputDef): Field {
  const type = (input.type ?? "STRING").toUpperCase();
  const control = CONTROLS[type] ?? "text";
  const hasDefault = input.defaults !== undefined && input.defaults !== null;
  let initial: Field["initial"];
  if (control === "checkbox") initial = input.defaults === true || input.defaults === "true";
  else if (control === "multiselect") initial = Array.isArray(input.defaults) ? input.defaults.map(String) : [];
  else if (control === "datetime-local" && typeof input.defaults === "string") initial = input.defaults.slice(0, 16);
  else initial = text(input.defaults);
  return {
    id: input.id,
    label: input.displayName || input.id,
    type,
    control,
    // A boolean always has a value (the checkbox); an input with a default needs none.
    required: control !== "checkbox" && (input.required ?? true) && !hasDefault,
    description: input.description ?? "",
    options: (input.values ?? []).map(String),
    step: type === "INT" ? "1" : type === "FLOAT" ? "any" : undefined,
    min: input.min === undefined || input.min === null ? undefined : String(input.min),
    max: input.max === undefined || input.max === null ? undefined : String(input.max),
    initial,
  };
}

export function fieldsOf(inputs: InputDef[] | undefined | null): Field[] {
  return (inputs ?? []).map(fieldOf);
}

export type Values = Record<string, string | boolean | string[] | File | null>;

/** The multipart body: empty optional fields are left out (the server applies defaults). */
export function formData(fields: Field[], values: Values): FormData {
  const body = new FormData();
  for (const field of fields) {
    const value = values[field.id];
    if (field.control === "checkbox") {
      body.append(field.id, value ? "true" : "false");
    } else if (field.control === "multiselect") {
      if (Array.isArray(value) && value.length > 0) body.append(field.id, JSON.stringify(value));
    } else if (value instanceof File) {
      body.append(field.id, value, value.name);
    } else if (typeof value === "string" && value !== "") {
      body.append(field.id, field.control === "datetime-local" && value.length === 16 ? `${value}:00` : value);
    }
  }
  return body;
}
