// Where a model's preprocessing and labels come from, in order: the user's own (the setting or
// the CLI flags), the model's preprocessing.json or label file, what the exported folder carries
// (Hugging Face, timm, ONNX metadata; engine/io/model-folder.ts), else the defaults. Shared by
// the extension and the CLI; no `vscode` import.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseLabels } from '../engine/io/labels';
import { readModelFolder } from '../engine/io/model-folder';
import type { PreprocessingSpec } from '../engine/io/preprocessing-spec';
import { LABEL_FILE_NAMES, parsePreprocessingFile, PREPROCESSING_FILE_NAME } from '../host/settings';

export interface ModelConfig {
  preprocessing: PreprocessingSpec;
  /** e.g. "setting lrpLens.preprocessing", "preprocessing.json", "preprocessor_config.json (Hugging Face ...)", "default". */
  preprocessingSource: string;
  labels?: string[];
  /** e.g. "labels.txt", "config.json id2label (Hugging Face)", "class indices". */
  labelsSource: string;
  /** Files found but not usable (a later source was used instead). */
  warnings: string[];
}

export interface ModelConfigRequest {
  modelPath: string;
  /** The user's own preprocessing and how to name it ("setting lrpLens.preprocessing", "command line"). */
  user?: { spec: PreprocessingSpec; source: string };
  /** An explicit labels file (setting or --labels). */
  labelsPath?: string;
  /** What the defaults are called when nothing else applies. */
  defaultSpec?: PreprocessingSpec;
}

async function readText(file: string, what: string): Promise<string | undefined> {
  try {
    return await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`${file}: cannot read the ${what}: ${(err as Error).message}`);
  }
}

/** The preprocessing and labels of a model, each with its source. */
export async function resolveModelConfig(req: ModelConfigRequest): Promise<ModelConfig> {
  const dir = path.dirname(req.modelPath);
  const out: ModelConfig = { preprocessing: req.defaultSpec ?? {}, preprocessingSource: 'default', labelsSource: 'class indices', warnings: [] };
  let preDone = false;
  if (req.user) {
    out.preprocessing = req.user.spec;
    out.preprocessingSource = req.user.source;
    preDone = true;
  } else {
    const file = path.join(dir, PREPROCESSING_FILE_NAME);
    const text = await readText(file, 'preprocessing file');
    if (text !== undefined) {
      out.preprocessing = parsePreprocessingFile(text, file);
      out.preprocessingSource = PREPROCESSING_FILE_NAME;
      preDone = true;
    }
  }

  let labelsDone = false;
  const labelsFile = req.labelsPath ?? LABEL_FILE_NAMES.map((n) => path.join(dir, n)).find((p) => fs.existsSync(p));
  if (labelsFile) {
    const text = await readText(labelsFile, 'labels file');
    if (text === undefined) throw new Error(`${labelsFile}: labels file not found`);
    out.labels = parseLabels(text, labelsFile);
    out.labelsSource = req.labelsPath ? labelsFile : path.basename(labelsFile);
    labelsDone = true;
  }

  if (!preDone || !labelsDone) {
    const found = await readModelFolder(req.modelPath);
    out.warnings.push(...found.warnings);
    if (!preDone && found.preprocessing) {
      out.preprocessing = found.preprocessing.value;
      out.preprocessingSource = found.preprocessing.source;
    }
    if (!labelsDone && found.labels) {
      out.labels = found.labels.value;
      out.labelsSource = found.labels.source;
    }
  }
  return out;
}
