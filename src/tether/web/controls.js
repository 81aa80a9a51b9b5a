// Parameter controls generated from a pipeline's JSON schema (pydantic's).
function decimals(step) {
  const text = String(step);
  return text.includes(".") ? text.split(".")[1].length : 0;
}

function labelFor(name, schema) {
  return schema.title || name.replace(/_/g, " ");
}

function control(name, schema, value, onChange) {
  const label = document.createElement("label");
  const text = document.createElement("span");
  text.textContent = labelFor(name, schema);
  label.append(text);
  if (schema.description) label.title = schema.description;
  let input;
  const current = value ?? schema.default;
  if (schema.enum) {
    input = document.createElement("select");
    for (const option of schema.enum) input.append(new Option(String(option), String(option)));
    input.value = String(current ?? schema.enum[0]);
    input.onchange = () => onChange(name, input.value);
  } else if (schema.type === "boolean") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = Boolean(current);
    input.onchange = () => onChange(name, input.checked);
  } else if (schema.type === "number" || schema.type === "integer") {
    input = document.createElement("input");
    const bounded = schema.minimum !== undefined && schema.maximum !== undefined;
    // Step exactly as the schema says (multipleOf); never a derived fraction of the range.
    const step = schema.multipleOf ?? (schema.type === "integer" ? 1 : null);
    input.type = bounded && step !== null ? "range" : "number";
    if (schema.minimum !== undefined) input.min = schema.minimum;
    if (schema.maximum !== undefined) input.max = schema.maximum;
    input.step = step ?? "any";
    const digits = step === null ? null : decimals(step);
    const exact = (v) => (digits === null ? Number(v) : Number(Number(v).toFixed(digits)));
    const show = (v) => (digits === null ? String(v) : Number(v).toFixed(digits));
    input.value = current ?? schema.minimum ?? 0;
    const shown = document.createElement("output");
    shown.textContent = show(input.value);
    input.oninput = () => { shown.textContent = show(input.value); };
    input.onchange = () => onChange(name, exact(input.value));
    label.append(input, shown);
    input.name = name;
    return label;
  } else {
    input = document.createElement("input");
    input.type = "text";
    input.value = current ?? "";
    if (name === "prompt") input.placeholder = "a colour, e.g. ocean blue";
    // Apply on Enter or leaving the box, not on every keystroke.
    input.onchange = () => onChange(name, input.value);
  }
  input.name = name;
  label.append(input);
  return label;
}

export function renderControls(container, pipeline, values, onChange) {
  container.replaceChildren();
  if (!pipeline) return;
  const props = pipeline.parameters?.properties || {};
  for (const [name, schema] of Object.entries(props)) {
    container.append(control(name, schema, values[name], onChange));
  }
}
