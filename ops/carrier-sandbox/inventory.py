"""The carrier sandbox's number inventory: realistic, valid numbers made from libphonenumber's metadata.

Every number is drawn at random (seeded, so the same seed and size always give the same inventory),
then kept only if phonenumbers says it is valid for its country and of the wanted type. Numbers come
in blocks (the same exchange / area code prefix), the way a carrier holds them, and major area codes
are favoured. Each record carries what the numbers search answers: E.164, ISO country, type, national
destination code, locality and region from the geocoder, features and costs.
"""

import random
import time

import phonenumbers as pn
from phonenumbers import PhoneNumberType as T
from phonenumbers import geocoder

COUNTRIES = ("US", "CA", "GB", "DE", "FR", "AU")

# Area codes (national significant number prefixes) given a larger share of the local numbers.
FEATURED = {
    "US": ("415", "212", "312", "646", "650"),
    "CA": ("416", "604", "514", "403", "613"),
    "GB": ("207", "203", "161", "121", "131", "141"),
    "DE": ("30", "40", "89", "69", "221"),
    "FR": ("1", "4", "5", "3", "2"),
    "AU": ("29", "28", "39", "73", "89"),
}

# Toll-free destination codes drawn from (NSN prefixes), besides the metadata's example.
TOLL_FREE_PREFIXES = {
    "US": ("800", "833", "844", "855", "866", "877", "888"),
    "CA": ("800", "833", "844", "855", "866", "877", "888"),
    "GB": ("800", "808"),
    "DE": ("800",),
    "FR": ("800", "801", "805", "809"),
    "AU": ("1800",),
}

# Share of each type in a country's inventory; the rest is local.
SHARES = {
    "US": {"toll_free": 0.10},
    "CA": {"toll_free": 0.10},
    "GB": {"mobile": 0.20, "toll_free": 0.08},
    "DE": {"mobile": 0.20, "toll_free": 0.08},
    "FR": {"mobile": 0.20, "toll_free": 0.08},
    "AU": {"mobile": 0.20, "toll_free": 0.08},
}

# (monthly, upfront) in USD, decimal strings: money never goes through a float.
COSTS = {
    "US": {"local": ("1.00", "1.00"), "toll_free": ("2.00", "1.00")},
    "CA": {"local": ("1.00", "1.00"), "toll_free": ("2.00", "1.00")},
    "GB": {"local": ("1.50", "0.00"), "mobile": ("3.00", "0.00"), "toll_free": ("5.00", "2.00")},
    "DE": {"local": ("2.00", "5.00"), "mobile": ("10.00", "5.00"), "toll_free": ("25.00", "10.00")},
    "FR": {"local": ("1.50", "1.00"), "mobile": ("4.00", "1.00"), "toll_free": ("20.00", "10.00")},
    "AU": {"local": ("4.00", "0.00"), "mobile": ("6.00", "0.00"), "toll_free": ("15.00", "5.00")},
}

SMS_COUNTRIES = ("US", "CA", "GB", "AU")
MMS_COUNTRIES = ("US", "CA")

US_STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC",
    "Washington D.C.": "DC", "Florida": "FL", "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID",
    "Illinois": "IL", "Indiana": "IN", "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY",
    "Louisiana": "LA", "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI",
    "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE",
    "Nevada": "NV", "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY",
    "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR",
    "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD",
    "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA",
    "Washington": "WA", "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY",
    "Puerto Rico": "PR", "Guam": "GU", "American Samoa": "AS", "U.S. Virgin Islands": "VI",
    "Northern Mariana Islands": "MP",
}
CA_PROVINCES = {
    "Alberta": "AB", "British Columbia": "BC", "Manitoba": "MB", "New Brunswick": "NB",
    "Newfoundland and Labrador": "NL", "Newfoundland": "NL", "Nova Scotia": "NS", "Ontario": "ON",
    "Prince Edward Island": "PE", "Quebec": "QC", "Saskatchewan": "SK", "Northwest Territories": "NT",
    "Nunavut": "NU", "Yukon": "YT", "Nova Scotia/Prince Edward Island": "NS",
}

_TYPE_NAME = {T.FIXED_LINE: "local", T.FIXED_LINE_OR_MOBILE: "local", T.MOBILE: "mobile",
              T.TOLL_FREE: "toll_free"}
_WANT = {"local": (T.FIXED_LINE, T.FIXED_LINE_OR_MOBILE), "mobile": (T.MOBILE,),
         "toll_free": (T.TOLL_FREE,)}
# NANP exchanges a carrier does not sell: N11 service codes, 555 (directory / fiction), 950, 958/959
# (test), 976 (premium).
_NANP_BAD_NXX = {"211", "311", "411", "511", "611", "711", "811", "911", "555", "950", "958", "959", "976"}


class Number:
    """One number of the inventory (immutable after generation)."""

    __slots__ = ("e164", "nsn", "country", "type", "ndc", "locality", "region", "region_name",
                 "rate_center", "features", "monthly", "upfront")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))

    def as_available(self):
        """The Telnyx-like available_phone_number record."""
        regions = [{"region_type": "country_code", "region_name": self.country}]
        if self.locality:
            regions.append({"region_type": "location", "region_name": self.locality})
        if self.region:
            regions.append({"region_type": "state" if self.country in ("US", "CA") else "region",
                            "region_name": self.region})
        if self.rate_center:
            regions.append({"region_type": "rate_center", "region_name": self.rate_center})
        return {
            "record_type": "available_phone_number",
            "phone_number": self.e164,
            "phone_number_type": self.type,
            "national_destination_code": self.ndc,
            "region_information": regions,
            "features": [{"name": f} for f in self.features],
            "cost_information": {"upfront_cost": self.upfront, "monthly_cost": self.monthly,
                                 "currency": "USD"},
            "reservable": True,
            "quickship": self.country in ("US", "CA"),
            "best_effort": False,
        }


def _features(cc, typ):
    f = ["voice"]
    if typ in ("local", "mobile") and cc in SMS_COUNTRIES:
        f.append("sms")
    if typ in ("local", "mobile") and cc in MMS_COUNTRIES:
        f.append("mms")
    return tuple(f)


class _Maker:
    """Builds one country's numbers; `seen` is shared by all countries (NANP toll-free numbers
    are the same for US and CA)."""

    def __init__(self, cc, seed, seen):
        self.cc = cc
        self.rng = random.Random("%s:%s" % (seed, cc))
        self.seen = seen
        self.md = pn.PhoneMetadata.metadata_for_region(cc)
        self.code = self.md.country_code
        self.country_name = geocoder.country_name_for_number(
            pn.example_number_for_type(cc, T.FIXED_LINE), "en") or cc
        self.out = []
        self._geo = {}

    def number(self, nsn):
        return pn.PhoneNumber(country_code=self.code, national_number=int(nsn))

    def check(self, nsn, typ):
        """A Number for nsn if it is valid for the country, of type typ and not taken, else None."""
        if nsn[0] == "0":
            return None
        n = self.number(nsn)
        if not pn.is_valid_number_for_region(n, self.cc):
            return None
        if pn.number_type(n) not in _WANT[typ]:
            return None
        e164 = "+%d%s" % (self.code, nsn)
        if e164 in self.seen:
            return None
        ndc_len = pn.length_of_national_destination_code(n)
        if ndc_len <= 0:
            return None
        return self._record(n, nsn, e164, typ, nsn[:ndc_len])

    def describe(self, n, nsn):
        key = nsn[:6] if self.code == 1 else nsn[:-3]
        d = self._geo.get(key)
        if d is None:
            # the number's validity is checked by the caller (or, for a NANP exchange, later)
            d = geocoder.description_for_valid_number(n, "en")
            self._geo[key] = d
        return d

    def _record(self, n, nsn, e164, typ, ndc):
        text = self.describe(n, nsn) if typ != "toll_free" else ""
        locality = region = region_name = rate_center = None
        if self.cc in ("US", "CA"):
            states = US_STATES if self.cc == "US" else CA_PROVINCES
            if ", " in text:
                locality, region = text.rsplit(", ", 1)
                region_name = next((k for k, v in states.items() if v == region), region)
                rate_center = locality.upper()
            elif text:
                region_name = text
                region = states.get(text, text)
        else:
            if text and text != self.country_name:
                locality = text
                region = text
            else:
                region = self.country_name
            region_name = region
        monthly, upfront = COSTS[self.cc][typ]
        return Number(e164=e164, nsn=nsn, country=self.cc, type=typ, ndc=ndc, locality=locality,
                      region=region, region_name=region_name, rate_center=rate_center,
                      features=_features(self.cc, typ), monthly=monthly, upfront=upfront)

    def add(self, rec):
        self.seen.add(rec.e164)
        self.out.append(rec)

    def digits(self, k):
        return "".join(self.rng.choice("0123456789") for _ in range(k))

    # -- NANP (US, CA): area code -> exchanges that geocode to a city -> lines ----------------

    def nanp_local(self, count):
        rng = self.rng
        npas = []
        for npa in range(201, 1000):
            s = str(npa)
            if s[1:] == "11" or s[0] in "01":
                continue
            n = self.number(s + "2345678")
            if pn.is_valid_number_for_region(n, self.cc) and pn.number_type(n) in _WANT["local"]:
                npas.append(s)
        featured = [a for a in FEATURED[self.cc] if a in npas]
        others = [a for a in npas if a not in featured]
        rng.shuffle(others)
        others = sorted(others[:40])
        exch, has_city = {}, {}
        for npa in featured + others:
            nxxs = [str(x) for x in range(200, 1000) if str(x) not in _NANP_BAD_NXX]
            if npa not in featured:
                nxxs = rng.sample(nxxs, 80)
            city, plain = [], []
            for nxx in nxxs:
                # (every line is checked later: no validity check here, it costs as much again)
                nsn = npa + nxx + "0000"
                d = self.describe(self.number(nsn), nsn)
                (city if ", " in d else plain).append(nxx)
            exch[npa] = city or plain[:20]
            has_city[npa] = bool(city)
        n_featured = int(count * 0.45)
        plan = [(a, n_featured // len(featured) + (1 if i < n_featured % len(featured) else 0))
                for i, a in enumerate(featured)]
        # the other area codes share the rest, those without a city exchange a third as much
        rest = count - n_featured
        weights = {a: (3 if has_city[a] else 1) for a in others if exch[a]}
        total = sum(weights.values())
        shares = {a: rest * w // total for a, w in weights.items()}
        for a in sorted(weights)[:rest - sum(shares.values())]:
            shares[a] += 1
        plan += sorted(shares.items())
        for npa, want in plan:
            got = tries = 0
            while got < want and tries < want * 20:
                tries += 1
                rec = self.check(npa + rng.choice(exch[npa]) + self.digits(4), "local")
                if rec:
                    self.add(rec)
                    got += 1

    # -- everything else: random discovery of valid blocks ------------------------------------

    def lengths(self, typ):
        desc = {"local": self.md.fixed_line, "mobile": self.md.mobile,
                "toll_free": self.md.toll_free}[typ]
        return tuple(desc.possible_length or self.md.general_desc.possible_length)

    def blocks(self, typ, count, prefixes=None, per_block=(3, 12)):
        """count numbers of type typ in blocks of a few numbers sharing all but their last 3
        digits; block starts are random numbers (after one of prefixes, when given) that check."""
        rng = self.rng
        lengths = self.lengths(typ)
        got = tries = 0
        limit = count * 400
        while got < count and tries < limit:
            tries += 1
            if prefixes:
                p = rng.choice(prefixes)
            elif typ == "toll_free":
                # sparse: start from a known toll-free destination code
                p = rng.choice(TOLL_FREE_PREFIXES[self.cc])
            else:
                p = str(rng.randint(1, 9))
            length = rng.choice(lengths)
            if length - len(p) < 4:
                continue
            start = self.check(p + self.digits(length - len(p)), typ)
            if not start:
                continue
            if typ == "local" and not start.locality and rng.random() < 0.7:
                continue  # favour blocks with a known city
            self.add(start)
            got += 1
            head = start.nsn[:-3]
            in_block = rng.randint(*per_block)
            for _ in range(in_block * 3):
                if got >= count or in_block <= 1:
                    break
                rec = self.check(head + self.digits(3), typ)
                if rec:
                    self.add(rec)
                    got += 1
                    in_block -= 1

    def build(self, size):
        shares = SHARES[self.cc]
        n_tf = int(size * shares.get("toll_free", 0))
        n_mob = int(size * shares.get("mobile", 0))
        n_local = size - n_tf - n_mob
        if self.cc in ("US", "CA"):
            self.nanp_local(n_local)
            self.blocks("toll_free", n_tf)
        else:
            n_featured = int(n_local * 0.4)
            feat = FEATURED[self.cc]
            for i, p in enumerate(feat):
                share = n_featured // len(feat) + (1 if i < n_featured % len(feat) else 0)
                self.blocks("local", share, prefixes=[p])
            self.blocks("local", n_local - n_featured)
            self.blocks("mobile", n_mob)
            self.blocks("toll_free", n_tf)
        return self.out


def generate(per_country=3000, seed="voxlink", countries=COUNTRIES):
    """The whole inventory: a list of Number sorted by E.164 (deterministic for a seed and size)."""
    seen = set()
    out = []
    for cc in countries:
        out.extend(_Maker(cc, seed, seen).build(per_country))
    out.sort(key=lambda r: r.e164)
    return out


if __name__ == "__main__":
    import collections
    import sys

    size = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    t0 = time.monotonic()
    inv = generate(size)
    dt = time.monotonic() - t0
    by = collections.Counter((r.country, r.type) for r in inv)
    for k in sorted(by):
        print(k, by[k])
    print("total", len(inv), "in %.2f s" % dt)
