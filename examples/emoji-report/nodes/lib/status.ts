// Status marks (astral-plane emoji travel as themselves, never as surrogate escapes).
export const MARK: Record<string, string> = { ok: "✅", warn: "⚠️", down: "🔥", unknown: "❔" };

export function mark(state: string): string {
	return MARK[state] ?? MARK.unknown;
}
