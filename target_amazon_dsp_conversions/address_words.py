"""Street words of an ADDRESS match key and the form each is written in before hashing.

Amazon's address normalization SDK (``amzn/amazon-ads-advertiser-audience-normalization-sdk-py``,
``AddressHashing``; Amazon's AMC uploader ``aws-solutions/amazon-marketing-cloud-uploader-from-aws``
ships the same maps) replaces whole address words with a standard form, per country. These tables
are written here from the public standards it follows:

- United States: USPS Publication 28 (Postal Addressing Standards), Appendix C1 "Street Suffix
  Abbreviations" (primary name, common spellings, standard abbreviation) and Appendix C2
  "Secondary Unit Designators"; directionals as in Publication 28 §233 (plus ``WEST``, which the
  SDK's first release lacked and the uploader's copy adds).
- Every country: the SDK's number indicators (``#``, ``NO``, ``NUM``, ``NÚMERO`` → ``NUMBER``),
  directionals, and its short "default" suffix set (a part of USPS C1) for Canada, France, Germany,
  Spain, Italy, Japan, India and (here) any other country.
- Great Britain, France, Spain, Italy: the few words the SDK's country lists rewrite (most of
  their entries map a word to itself). In France, Spain and Italy the SDK *expands*
  abbreviations (``RTE`` → ``ROUTE``, ``C/`` → ``CALLE``, ``P.ZZA`` → ``PIAZZA``).

A table is written ``standard form: "spelling spelling ..."``; the standard form also maps to
itself. Keys are folded as the match key is (lower case, accents folded, ``a-z 0-9`` only), so
``NÚMERO`` is looked up as ``numero`` and ``P.ZZA`` as ``pzza``. Where a word is in two of a
country's lists the later list wins, as in the SDK (US: ``KEY`` is a unit designator, not the
suffix ``KY``; Spain: ``PL`` is ``PLAZA``, not ``PL``).

Deliberate departures from the SDK's literal lists (see the README's identity section):
``BOULEVARD`` → ``BLVD`` (the SDK lists ``BOULED``, a damaged ``BOULEVARD``), ``HANGAR`` →
``HNGR`` (USPS spelling; the SDK's ``HANGER`` is kept too).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ADDRESS_WORDS", "DEFAULT_WORDS_KEY", "words_key"]

# --- tables: standard form -> the spellings that become it ----------------------------------

# Number indicators (SDK): "Apt #4", "No 5", "Núm. 7" all spell the word NUMBER.
NUMBER_INDICATORS: dict[str, str] = {"number": "# no num numero"}

# Directionals (USPS Publication 28 §233; "so" from the SDK).
DIRECTIONALS: dict[str, str] = {
    "n": "north n",
    "e": "east e",
    "s": "south s so",
    "w": "west w",
    "ne": "northeast ne",
    "nw": "northwest nw",
    "se": "southeast se",
    "sw": "southwest sw",
}

# USPS Publication 28, Appendix C1: street suffixes.
USPS_STREET_SUFFIXES: dict[str, str] = {
    "aly": "alley allee ally aly",
    "anx": "annex anex annx anx",
    "arc": "arcade arc",
    "ave": "avenue av aven avenu avn avnue ave",
    "byu": "bayou bayoo byu",
    "bch": "beach bch",
    "bnd": "bend bnd",
    "blf": "bluff bluf blf",
    "blfs": "bluffs blfs",
    "btm": "bottom bot bottm btm",
    "blvd": "boulevard boul boulv blvd",
    "br": "branch brnch br",
    "brg": "bridge brdge brg",
    "brk": "brook brk",
    "brks": "brooks brks",
    "bg": "burg bg",
    "bgs": "burgs bgs",
    "byp": "bypass bypa bypas byps byp",
    "cp": "camp cmp cp",
    "cyn": "canyon canyn cnyn cyn",
    "cpe": "cape cpe",
    "cswy": "causeway causwa cswy",
    "ctr": "center cen cent centr centre cnter cntr ctr",
    "ctrs": "centers ctrs",
    "cir": "circle circ circl crcl crcle cir",
    "cirs": "circles cirs",
    "clf": "cliff clf",
    "clfs": "cliffs clfs",
    "clb": "club clb",
    "cmn": "common cmn",
    "cmns": "commons cmns",
    "cor": "corner cor",
    "cors": "corners cors",
    "crse": "course crse",
    "ct": "court ct",
    "cts": "courts cts",
    "cv": "cove cv",
    "cvs": "coves cvs",
    "crk": "creek crk",
    "cres": "crescent crsent crsnt cres",
    "crst": "crest crst",
    "xing": "crossing crssng xing",
    "xrd": "crossroad xrd",
    "xrds": "crossroads xrds",
    "curv": "curve curv",
    "dl": "dale dl",
    "dm": "dam dm",
    "dv": "divide div dvd dv",
    "dr": "drive driv drv dr",
    "drs": "drives drs",
    "est": "estate est",
    "ests": "estates ests",
    "expy": "expressway exp expr express expw expy",
    "ext": "extension extn extnsn ext",
    "exts": "extensions exts",
    "fall": "fall",
    "fls": "falls fls",
    "fry": "ferry frry fry",
    "fld": "field fld",
    "flds": "fields flds",
    "flt": "flat flt",
    "flts": "flats flts",
    "frd": "ford frd",
    "frds": "fords frds",
    "frst": "forest forests frst",
    "frg": "forge forg frg",
    "frgs": "forges frgs",
    "frk": "fork frk",
    "frks": "forks frks",
    "ft": "fort frt ft",
    "fwy": "freeway freewy frway frwy fwy",
    "gdn": "garden gardn grden grdn gdn",
    "gdns": "gardens grdns gdns",
    "gtwy": "gateway gatewy gatway gtway gtwy",
    "gln": "glen gln",
    "glns": "glens glns",
    "grn": "green grn",
    "grns": "greens grns",
    "grv": "grove grov grv",
    "grvs": "groves grvs",
    "hbr": "harbor harb harbr hrbor hbr",
    "hbrs": "harbors hbrs",
    "hvn": "haven hvn",
    "hts": "heights ht hts",
    "hwy": "highway highwy hiway hiwy hway hwy",
    "hl": "hill hl",
    "hls": "hills hls",
    "holw": "hollow hllw hollows holws holw",
    "inlt": "inlet inlt",
    "is": "island islnd is",
    "iss": "islands islnds iss",
    "isle": "isle isles",
    "jct": "junction jction jctn junctn juncton jct",
    "jcts": "junctions jctns jcts",
    "ky": "key ky",
    "kys": "keys kys",
    "knl": "knoll knol knl",
    "knls": "knolls knls",
    "lk": "lake lk",
    "lks": "lakes lks",
    "land": "land",
    "lndg": "landing lndng lndg",
    "ln": "lane ln",
    "lgt": "light lgt",
    "lgts": "lights lgts",
    "lf": "loaf lf",
    "lck": "lock lck",
    "lcks": "locks lcks",
    "ldg": "lodge ldge lodg ldg",
    "loop": "loop loops",
    "mall": "mall",
    "mnr": "manor mnr",
    "mnrs": "manors mnrs",
    "mdw": "meadow",
    "mdws": "meadows medows mdw mdws",
    "mews": "mews",
    "ml": "mill ml",
    "mls": "mills mls",
    "msn": "mission missn mssn msn",
    "mtwy": "motorway mtwy",
    "mt": "mount mnt mt",
    "mtn": "mountain mntain mntn mountin mtin mtn",
    "mtns": "mountains mntns mtns",
    "nck": "neck nck",
    "orch": "orchard orchrd orch",
    "oval": "oval ovl",
    "opas": "overpass opas",
    "park": "park parks prk",
    "pkwy": "parkway parkways parkwy pkway pkwys pky pkwy",
    "pass": "pass",
    "psge": "passage psge",
    "path": "path paths",
    "pike": "pike pikes",
    "pne": "pine pne",
    "pnes": "pines pnes",
    "pl": "place pl",
    "pln": "plain pln",
    "plns": "plains plns",
    "plz": "plaza plza plz",
    "pt": "point pt",
    "pts": "points pts",
    "prt": "port prt",
    "prts": "ports prts",
    "pr": "prairie prr pr",
    "radl": "radial rad radiel radl",
    "ramp": "ramp",
    "rnch": "ranch ranches rnchs rnch",
    "rpd": "rapid rpd",
    "rpds": "rapids rpds",
    "rst": "rest rst",
    "rdg": "ridge rdge rdg",
    "rdgs": "ridges rdgs",
    "riv": "river rivr rvr riv",
    "rd": "road rd",
    "rds": "roads rds",
    "rte": "route rte",
    "row": "row",
    "rue": "rue",
    "run": "run",
    "shl": "shoal shl",
    "shls": "shoals shls",
    "shr": "shore shoar shr",
    "shrs": "shores shoars shrs",
    "skwy": "skyway skwy",
    "spg": "spring spng sprng spg",
    "spgs": "springs spngs sprngs spgs",
    "spur": "spur spurs",
    "sq": "square sqr sqre squ sq",
    "sqs": "squares sqrs sqs",
    "sta": "station statn stn sta",
    "stra": "stravenue strav straven stravn strvn strvnue stra",
    "strm": "stream streme strm",
    "st": "street str strt st",
    "sts": "streets sts",
    "smt": "summit sumit sumitt smt",
    "ter": "terrace terr ter",
    "trwy": "throughway trwy",
    "trce": "trace traces trce",
    "trak": "track tracks trk trks trak",
    "trfy": "trafficway trfy",
    "trl": "trail trails trls trl",
    "trlr": "trailer trlrs trlr",
    "tunl": "tunnel tunel tunls tunnels tunnl tunl",
    "tpke": "turnpike trnpk turnpk tpke",
    "upas": "underpass upas",
    "un": "union un",
    "uns": "unions uns",
    "vly": "valley vally vlly vly",
    "vlys": "valleys vlys",
    "via": "viaduct vdct viadct via",
    "vw": "view vw",
    "vws": "views vws",
    "vlg": "village vill villag villg villiage vlg",
    "vlgs": "villages vlgs",
    "vl": "ville vl",
    "vis": "vista vist vst vsta vis",
    "walk": "walk walks",
    "wall": "wall",
    "way": "way wy",
    "ways": "ways",
    "wl": "well wl",
    "wls": "wells wls",
}

# USPS Publication 28, Appendix C2: secondary unit designators ("appt" and "hanger" from the SDK).
USPS_SECONDARY_UNITS: dict[str, str] = {
    "apt": "apartment appt apt",
    "bsmt": "basement bsmt",
    "bldg": "building bldg",
    "dept": "department dept",
    "fl": "floor fl",
    "frnt": "front frnt",
    "hngr": "hangar hanger hngr",
    "key": "key",
    "lbby": "lobby lbby",
    "lot": "lot",
    "lowr": "lower lowr",
    "ofc": "office ofc",
    "ph": "penthouse ph",
    "pier": "pier",
    "rear": "rear",
    "rm": "room rm",
    "side": "side",
    "slip": "slip",
    "spc": "space spc",
    "stop": "stop",
    "ste": "suite ste",
    "trlr": "trailer trlr",
    "unit": "unit",
    "uppr": "upper uppr",
}

# The SDK's default suffix set (a part of USPS C1), used outside the US and Great Britain.
DEFAULT_STREET_SUFFIXES: dict[str, str] = {
    "ave": "avenue ave",
    "blvd": "boulevard blvd",
    "cir": "circle cir",
    "cirs": "circles cirs",
    "ct": "court ct",
    "ctr": "centre center ctr",
    "dr": "drive dr",
    "fwy": "freeway frwy fwy",
    "hwy": "highway hwy",
    "ln": "lane ln",
    "park": "parks park",
    "pkwy": "parkway parkways parkwy pkway pkwys pky pkwy",
    "pl": "place pl",
    "plz": "plaza plza plz",
    "rd": "road rd",
    "sq": "square sqr squ sq",
    "st": "street str st",
}

# Great Britain (SDK's UK lists): the words they rewrite; all their other words stay as written.
GB_STREET_WORDS: dict[str, str] = {
    "alley": "aly alley",
    "ave": "avenue ave",
    "blvd": "boulevard blvd",
    "centre": "center ctr centre",
    "cir": "circle cir",
    "close": "cl close",
    "ct": "court ct",
    "dr": "drive dr",
    "ln": "lane ln",
    "ltd": "limited ltd",
    "pl": "place pl",
    "rd": "road rd",
    "square": "sq square",
    "st": "street st",
    "apt": "apartment apt",
}

# France (SDK): abbreviations written out; applied before the default set.
FR_STREET_WORDS: dict[str, str] = {
    "chemin": "che chemin",
    "impasse": "imp impasse",
    "route": "rte route",
}

# Spain (SDK): street-type abbreviations written out; applied after the default set.
ES_STREET_WORDS: dict[str, str] = {
    "acceso": "acces acceso",
    "alameda": "alam alameda",
    "autopista": "auto autopista",
    "autovia": "autov autovia",
    "avenida": "av avd avda avenida",
    "bule": "bulev bule",
    "calle": "c cl carre carrer calle",
    "calleja": "cllja calleja",
    "callejon": "callej cjon cllon callejon",
    "callejuela": "cjla callejuela",
    "callizo": "cllzo callizo",
    "calzada": "czada calzada",
    "camino": "cmno cno camino",
    "carrera": "cra carrera",
    "carretera": "ctra carretera",
    "carreterin": "ctrin carreterin",
    "carril": "crril carril",
    "cinturon": "cint cinturon",
    "circunvalacion": "ccvcn circunvalacion",
    "lugar": "lg lugar",
    "muelle": "muell muelle",
    "pasadizo": "pzo pasadizo",
    "pasaje": "psaje pasaje",
    "passeig": "p paseo pg ps passeig",
    "plaza": "pl plza pza plaza",
    "rambla": "rbla rambla",
    "ronda": "rda ronda",
    "urbanizacion": "urb urbanizacion",
}

# Italy (SDK): street-type abbreviations written out; applied after the default set.
IT_STREET_WORDS: dict[str, str] = {
    "corso": "cso corso",
    "largo": "lgo largo",
    "piazza": "pza pzza piazza",
    "piazzale": "ple piazzale",
    "piazzetta": "ptta piazzetta",
    "via": "v via",
    "viale": "vle viale",
    "vicolo": "vlo vicolo",
}


# --- per-country word maps -----------------------------------------------------------------


def _spellings(table: Mapping[str, str]) -> dict[str, str]:
    """spelling -> standard form, the standard form included."""
    words = {}
    for standard, spellings in table.items():
        words[standard] = standard
        for spelling in spellings.split():
            words[spelling] = standard
    return words


def _merged(*tables: Mapping[str, str]) -> dict[str, str]:
    """The tables in order, a later one winning; words that stay as written left out."""
    words: dict[str, str] = {}
    for table in tables:
        words.update(_spellings(table))
    return {word: standard for word, standard in words.items() if word != standard}


DEFAULT_WORDS_KEY = ""
_COMMON = (NUMBER_INDICATORS, DIRECTIONALS)

# Country (ISO 3166-1 alpha-2) -> word -> standard form. The lists and their order are the SDK's.
ADDRESS_WORDS: dict[str, dict[str, str]] = {
    "US": _merged(*_COMMON, USPS_STREET_SUFFIXES, USPS_SECONDARY_UNITS),
    "GB": _merged(*_COMMON, GB_STREET_WORDS),
    "FR": _merged(*_COMMON, FR_STREET_WORDS, DEFAULT_STREET_SUFFIXES),
    "ES": _merged(*_COMMON, DEFAULT_STREET_SUFFIXES, ES_STREET_WORDS),
    "IT": _merged(*_COMMON, DEFAULT_STREET_SUFFIXES, IT_STREET_WORDS),
    DEFAULT_WORDS_KEY: _merged(*_COMMON, DEFAULT_STREET_SUFFIXES),
}


def words_key(country: str | None) -> str:
    """Key of ``ADDRESS_WORDS`` for a canonical country code (None: unknown country).

    An unknown country takes the US words: the SDK's own example is a US address, and an address
    in a country without a list of its own (CA, DE, JP, IN, ...) takes the default set.
    """
    if country is None:
        return "US"
    return country if country in ADDRESS_WORDS else DEFAULT_WORDS_KEY
