// TEMPORARY STUB (helper-1 replaces this file with the real validator)
export class ApiSchema {
  validate(
    _m: string,
    _p: string,
    _params: unknown,
    _o: { json: boolean },
  ): Record<string, string> | null {
    return null;
  }
}
export function loadApiSchema(_path?: string): Promise<ApiSchema | null> {
  return Promise.resolve(null);
}
