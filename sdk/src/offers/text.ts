/** Currencies whose minor unit is not 1/100 (ISO 4217 exponent); everything else has 2 decimals. */
const CURRENCY_DECIMALS: Readonly<Record<string, number>> = {
  BIF: 0, CLP: 0, DJF: 0, GNF: 0, ISK: 0, JPY: 0, KMF: 0, KRW: 0, PYG: 0, RWF: 0, UGX: 0, UYI: 0, VND: 0, VUV: 0, XAF: 0, XOF: 0, XPF: 0,
  BHD: 3, IQD: 3, JOD: 3, KWD: 3, LYD: 3, OMR: 3, TND: 3,
};

/**
 * Formats minor units as "12.50 EUR". Locale-free on purpose: offers must be byte-identical
 * wherever they are computed, or every run would push them again.
 */
export function formatMoney(minor: number, currency: string): string {
  const decimals = CURRENCY_DECIMALS[currency] ?? 2;
  const sign = minor < 0 ? '-' : '';
  const digits = String(Math.abs(minor)).padStart(decimals + 1, '0');
  const whole = digits.slice(0, digits.length - decimals);
  const fraction = decimals > 0 ? `.${digits.slice(digits.length - decimals)}` : '';
  return `${sign}${whole}${fraction} ${currency}`;
}

/** Fills `{name}` placeholders (validated beforehand) and cuts the result to `maxChars` code points. */
export function fillTemplate(template: string, values: Readonly<Record<string, string | number>>, maxChars: number): string {
  const text = template.replace(/\{([^{}]*)\}/g, (whole, name: string) => (name in values ? String(values[name]) : whole));
  const chars = [...text];
  return chars.length <= maxChars ? text : chars.slice(0, maxChars).join('');
}
