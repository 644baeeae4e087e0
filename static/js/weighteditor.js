// The MLP page's weight editor: a small form opened beside a clicked (or Enter-ed) link or bias, sending
// the typed value as an `edit_weight` control message and saying why the server refused it.

const $ = (id) => document.getElementById(id);

export class WeightEditor {
  /** @param {(msg: object) => Promise<object>} request sends a control message, resolves with its ack */
  constructor(request) {
    this.request = request;
    this.form = $("weight-editor");
    this.input = $("weight-value");
    this.errorEl = $("weight-error");
    this.editing = null;
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    $("weight-cancel").addEventListener("click", () => this.close());
    document.addEventListener("pointerdown", (e) => {
      if (!this.form.hidden && !this.form.contains(e.target) && !e.target.closest?.("path.hit, button.bias")) this.close();
    });
    this.form.addEventListener("keydown", (e) => e.key === "Escape" && this.close());
  }

  /** Open beside `target` ({layer, param, index, value, label, x, y, from}: what the diagram clicked). */
  open(target) {
    this.editing = target;
    const { form, input } = this;
    $("weight-label").textContent = `new value of the ${target.label}`;
    input.value = target.value == null ? "" : +target.value.toFixed(4);
    this.errorEl.hidden = true;
    form.hidden = false;
    const r = target.from.getBoundingClientRect();
    const x = target.x ?? r.right + window.scrollX;
    const y = target.y ?? r.top + window.scrollY;
    const right = window.scrollX + document.documentElement.clientWidth - form.offsetWidth - 8;
    form.style.left = `${Math.max(8, Math.min(x + 12, right))}px`;
    form.style.top = `${y + 12}px`;
    input.focus();
    input.select();
  }

  close() {
    this.form.hidden = true;
    if (this.editing?.from?.isConnected) this.editing.from.focus({ preventScroll: true });
    this.editing = null;
  }

  async submit() {
    if (!this.editing) return;
    const raw = this.input.value.trim();
    const { layer, param, index } = this.editing;
    try {
      await this.request({ action: "edit_weight", layer, param, index, value: raw === "" ? null : Number(raw) });
      this.close();
    } catch (err) {
      // the value refused (not a finite number): say what to type, in words
      this.errorEl.textContent = err.field?.join() === "value" ? "type a number, e.g. −1.5" : err.message;
      this.errorEl.hidden = false;
    }
  }
}
