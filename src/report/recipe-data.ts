// A recipe as a report records it: plain data (pipeline/recipe.ts reads recipe files into it).

export interface RecipeEval {
  data?: string;
  labels?: string;
  metric?: string;
  dims?: Record<string, number>;
  /** Whole shapes of synthesized inputs, by input name (--shape). */
  shape?: Record<string, number[]>;
  seed?: number;
  batches?: number;
  threads?: number;
  runs?: number;
  /** Seconds an evaluation may spend in ONNX Runtime (--eval-timeout). */
  timeout?: number;
}

export interface RecipeGates {
  'max-accuracy-drop'?: number;
  'min-size-reduction'?: number;
  'min-cosine'?: number;
  'max-latency-ratio'?: number;
}

/** A recipe as plain data, with every option of every pass written out: what a report records. */
export interface RecipeData {
  passes: Record<string, Record<string, unknown>>[];
  seed?: number;
  eval?: RecipeEval;
  gates?: RecipeGates;
}
