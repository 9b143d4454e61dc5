import { parse as parseCsv } from 'csv-parse/sync';

/** A CSV file that cannot be read; `line` is 1-based (the header is line 1). */
export class CsvError extends Error {
  constructor(
    readonly source: string,
    readonly line: number,
    readonly column: string | null,
    detail: string,
  ) {
    super(`${source} line ${line}${column === null ? '' : `, column ${column}`}: ${detail}`);
    this.name = 'CsvError';
  }
}

export type CsvErrorFactory = (source: string, line: number, column: string | null, detail: string) => Error;

/** ISO-8601 date-time with a zone: without one, a time would depend on the machine's time zone. */
export const isoDateTimeWithZone = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Reads a CSV with a header (BOM, CRLF, blank lines and quoted fields accepted) and checks that
 * the required columns are there. Each row keeps its 1-based line number for error messages.
 */
export function readCsvTable(
  text: string,
  source: string,
  required: readonly string[],
  makeError: CsvErrorFactory = (...args) => new CsvError(...args),
): { header: string[]; rows: Array<{ record: Record<string, string>; line: number }> } {
  let parsed: Array<{ record: Record<string, string>; info: { lines: number } }>;
  let header: string[] = [];
  try {
    parsed = parseCsv(text, {
      bom: true,
      columns: (names: string[]) => (header = names.map((name) => name.trim())),
      skip_empty_lines: true,
      trim: true,
      info: true,
    });
  } catch (error) {
    const e = error as Error & { lines?: number };
    throw makeError(source, e.lines ?? 1, null, e.message);
  }
  for (const column of required) {
    if (!header.includes(column)) throw makeError(source, 1, column, `missing from the header (found: ${header.join(', ') || 'nothing'})`);
  }
  return { header, rows: parsed.map(({ record, info }) => ({ record, line: info.lines })) };
}
