// The locale the page formats numbers in: the browser's language if Intl accepts it, else en-US.
//
// navigator.language is not always a valid BCP 47 tag: WebKitGTK under a C/POSIX locale
// (LANG=C.UTF-8) reports "C", and `new Intl.NumberFormat("C")` throws a RangeError. Every
// number the page formats goes through here, and charts.js hands the same tag to uPlot.
export const FALLBACK_LOCALE = "en-US";

/** `tag` canonicalised if Intl accepts it, else FALLBACK_LOCALE. */
export function validLocale(tag) {
  try {
    const [canonical] = Intl.getCanonicalLocales(tag || []);
    if (!canonical) return FALLBACK_LOCALE;
    new Intl.NumberFormat(canonical); // the call that throws in uPlot, tried here first
    return canonical;
  } catch {
    return FALLBACK_LOCALE;
  }
}

export const LOCALE = validLocale(globalThis.navigator?.language);

const integer = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 0 });

/** A whole number for people: 60000 → "60,000" (in the page's locale). */
export const formatInteger = (n) => integer.format(n);
