// A strip of small grey images with a caption each: the test images (buttons: click one to choose it) and
// the surest mistakes (figures). `testImages` and `surestMistakes` read them from a CNN frame.
import { paintGrey } from "./figures.js";

/** @typedef {{image: {bytes: ArrayLike<number>, offset: number, rows: number, cols: number},
 *   caption: string, captionClass?: string, label: string}} StripItem */

export class ImageStrip {
  /** @param {HTMLElement} parent  @param {{onChoose?: (index: number) => void}} opts with `onChoose`, the
   *  images are options to choose (buttons, data-example, aria-selected); without, captioned pictures. */
  constructor(parent, { onChoose = null } = {}) {
    this.parent = parent;
    this.onChoose = onChoose;
  }

  /** An image's element, created once: a button (canvas + span) or a figure (canvas + figcaption). */
  item(i) {
    const old = this.parent.children[i];
    if (old) return old;
    const choosable = Boolean(this.onChoose);
    const el = document.createElement(choosable ? "button" : "figure");
    el.className = "example";
    el.append(document.createElement("canvas"), document.createElement(choosable ? "span" : "figcaption"));
    if (choosable) {
      el.type = "button";
      el.dataset.example = String(i);
      el.setAttribute("role", "option");
      el.addEventListener("click", () => this.onChoose(i));
    } else {
      el.querySelector("canvas").setAttribute("role", "img");
    }
    this.parent.append(el);
    return el;
  }

  /** Show `items` (StripItem[]); `selected`: the index of the chosen one (choosable strips). */
  show(items, selected = -1) {
    while (this.parent.children.length > items.length) this.parent.lastChild.remove();
    items.forEach((it, i) => {
      const el = this.item(i);
      const canvas = el.querySelector("canvas");
      paintGrey(canvas, it.image);
      const caption = el.lastElementChild;
      caption.textContent = it.caption;
      if (it.captionClass) caption.className = it.captionClass;
      if (this.onChoose) {
        el.setAttribute("aria-selected", String(i === selected));
        el.setAttribute("aria-label", it.label);
      } else {
        canvas.setAttribute("aria-label", it.label);
      }
    });
    this.parent.dataset.count = String(items.length);
  }
}

/** The frame's test images (examples, example_probs) with the network's answer (green right, red wrong). */
export function testImages(frame) {
  const ex = frame.arrays.examples;
  const probs = frame.arrays.example_probs;
  if (!ex) return null;
  const [n, ch, rows, cols] = ex.shape;
  const names = frame.header.class_names;
  const k = probs.shape[1];
  return Array.from({ length: n }, (_, e) => {
    let best = 0;
    for (let j = 1; j < k; j++) if (probs.data[e * k + j] > probs.data[e * k + best]) best = j;
    const truth = frame.header.example_labels[e];
    const sure = (100 * probs.data[e * k + best]).toFixed(0);
    return {
      image: { bytes: ex.data, offset: e * rows * cols * ch, rows, cols },
      caption: names[best],
      captionClass: best === truth ? "right" : "wrong",
      label: `test image ${e + 1}: a ${names[truth]}, the network says ${names[best]} (${sure} %)`,
    };
  });
}

/** The frame's misclassified test images, most confident first (wrong_images, wrong_predicted, ...). */
export function surestMistakes(frame) {
  const a = frame.arrays;
  if (!a.wrong_images) return null;
  const [m, ch, rows, cols] = a.wrong_images.shape;
  const names = frame.header.class_names;
  return Array.from({ length: m }, (_, i) => {
    const said = names[a.wrong_predicted.data[i]];
    const sure = (100 * a.wrong_confidence.data[i]).toFixed(0);
    return {
      image: { bytes: a.wrong_images.data, offset: i * ch * rows * cols, rows, cols },
      caption: `${said}? ${sure} %`,
      label: `test image ${a.wrong_index.data[i] + 1}: the network says ${said} (${sure} %), wrongly`,
    };
  });
}
