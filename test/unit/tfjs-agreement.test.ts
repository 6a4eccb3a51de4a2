// Issue 4, acceptance 2 on real tf.js models with real photos: the tfjs and onnxruntime backends give
// input relevance within relL2 1e-4 of each other, for every composite. Photos from the shared
// fixtures, preprocessed as each model expects (nsfwjs: pixels / 255; the emotion model: grey, [-1, 1]).
//
// Comparisons that do not agree are `todo` with the measured numbers and the layer where the
// backends first diverge (see the reasons below); the threshold is never loosened. Each todo is
// checked to be a float32 conditioning limit, not a backend bug: moving the input by one float32
// ulp moves onnxruntime's own relevance by more than 1e-4 there (`ulpSensitivity`).
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Explainer } from '../../src/explain/explainer';
import { COMPOSITE_NAMES, parseRulesConfig } from '../../src/engine/config';
import { type PreprocessOptions, inputBoundsFor, loadImageTensor } from '../../src/engine/io/image';
import { IMAGES_DIR, relL2, ulpSensitivity } from '../helpers';
import { emotionModel, extractNsfwjs } from './tfjs-util';

const COMPOSITES = COMPOSITE_NAMES;

const EMOTION_ADD =
  'emotion GraphModel, grace_hopper.jpg: the backends agree to ~1e-5 down to add_1 (a residual Add, norm rule, ' +
  'stabiliser 1e-6; map relL2 1.7e-5 at its output), then jump to 2.3e-4 (max_pooling2d_1 branch) and 3.8e-4 ' +
  '(strided 1x1 shortcut Conv batch_normalization_1) on its two inputs: the split a/(a+b) of that Add amplifies ' +
  'the float32 differences of the two forward branches where a+b is near zero. One ulp of input noise alone ' +
  'moves onnxruntime\'s own relevance by 1e-4 to 7e-4 for these composites';
const MOBILENET_EPS =
  'nsfwjs MobileNetV2, LRP-epsilon 1e-6 on every layer (relevance sums 7.097 vs 7.101 on chelsea): near-zero ' +
  'epsilon denominators at the linear-bottleneck project convs (block_9_project, block_15_project) that feed ' +
  'residual Adds with z near 0. One ulp of input noise alone moves onnxruntime\'s own relevance by 8e-4 to 2.7e-3, ' +
  'and onnxruntime with and without graph optimisations differs by 1e-3. Every other composite agrees to <= 4e-5';

/** measured with tf.js 4.22 wasm vs onnxruntime-node 1.30 (cpu) */
const TODO: Record<string, string> = {
  'emotion/grace_hopper.jpg/epsilon': `relL2 2.6e-4; ${EMOTION_ADD}`,
  'emotion/grace_hopper.jpg/alpha1-beta0': `relL2 3.7e-4; ${EMOTION_ADD}`,
  'emotion/grace_hopper.jpg/epsilon-plus': `relL2 3.7e-4; ${EMOTION_ADD}`,
  'emotion/grace_hopper.jpg/epsilon-plus-flat': `relL2 3.5e-4; ${EMOTION_ADD}`,
  'emotion/grace_hopper.jpg/epsilon-alpha2-beta1': `relL2 2.1e-4; ${EMOTION_ADD}`,
  'emotion/grace_hopper.jpg/epsilon-alpha2-beta1-flat': `relL2 2.3e-4; ${EMOTION_ADD}`,
  'mobilenetv2/chelsea.png/epsilon': `relL2 1.2e-3; ${MOBILENET_EPS}`,
  'mobilenetv2/coffee.png/epsilon': `relL2 1.3e-3; ${MOBILENET_EPS}`,
};

interface RealModel {
  key: string;
  label: string;
  file: () => string;
  preset: PreprocessOptions['preset'];
  images: string[];
}

const MODELS: RealModel[] = [
  { key: 'emotion', label: 'human emotion GraphModel', file: emotionModel, preset: 'symmetric', images: ['grace_hopper.jpg', 'astronaut.png'] },
  { key: 'mobilenetv2', label: 'nsfwjs MobileNetV2 LayersModel (uint8)', file: () => extractNsfwjs('mobilenet_v2'), preset: 'unit', images: ['chelsea.png', 'coffee.png'] },
];

for (const m of MODELS)
  describe(`tfjs and onnxruntime backends agree on ${m.label} with photos (relL2 < 1e-4)`, () => {
    let pair: Promise<[Explainer, Explainer]> | undefined;
    const explainers = () =>
      (pair ??= Promise.all([Explainer.load(m.file(), { backend: 'tfjs' }), Explainer.load(m.file(), { backend: 'onnxruntime' })]));
    after(async () => {
      if (!pair) return;
      for (const e of await pair) await e.dispose();
    });

    const load = async (img: string, composite: string) => {
      const [a] = await explainers();
      const opts: PreprocessOptions = {
        width: a.input.width,
        height: a.input.height,
        channels: a.input.channels as 1 | 3,
        layout: a.input.layout,
        preset: m.preset,
      };
      const { tensor: x } = await loadImageTensor(path.join(IMAGES_DIR, img), opts);
      const raw: Record<string, unknown> = { composite };
      if (composite === 'epsilon-gamma-box') raw.inputBounds = inputBoundsFor(opts);
      return { x, rules: parseRulesConfig(raw) };
    };

    for (const img of m.images)
      for (const composite of COMPOSITES) {
        const id = `${m.key}/${img}/${composite}`;
        const todo = TODO[id];
        it(id, todo ? { todo } : {}, async (t) => {
          const [a, b] = await explainers();
          assert.equal(a.input.layout, 'NHWC');
          const { x, rules } = await load(img, composite);
          const ra = await a.explain(x, { rules });
          const rb = await b.explain(x, { rules });
          assert.equal(ra.target, rb.target, 'same target class');
          const d = relL2(ra.relevance.data as Float32Array, rb.relevance.data as Float32Array);
          t.diagnostic(`relL2 ${d.toExponential(2)}; relevance sums ${ra.relevanceSum.toFixed(5)} (tfjs) ${rb.relevanceSum.toFixed(5)} (onnxruntime)`);
          assert.ok(d < 1e-4, `${id}: relL2 ${d.toExponential(2)}`);
        });
        if (todo)
          it(`${id} is ill-conditioned in float32: one ulp of input noise moves onnxruntime's relevance by > 1e-4`, async (t) => {
            const [, b] = await explainers();
            const { x, rules } = await load(img, composite);
            const s = await ulpSensitivity(async (v) => (await b.explain(v, { rules })).relevance.data as Float32Array, x);
            t.diagnostic(`one-ulp sensitivity ${s.toExponential(2)}`);
            assert.ok(s > 1e-4, `${id}: one-ulp sensitivity ${s.toExponential(2)}: well enough conditioned for 1e-4, so the todo is a real disagreement`);
          });
      }
  });
