#!/usr/bin/env python3
# Prints assets/openapi.json (or the file named) in the house style: the outline expanded,
# leaves on one line. Edit the document as JSON, then:
#   python3 scripts/format-openapi.py assets/openapi.json > /tmp/o.json && mv /tmp/o.json assets/openapi.json
import json, sys
def inline(o):
    if isinstance(o, dict):
        if not o: return "{}"
        return "{ " + ", ".join(json.dumps(k, ensure_ascii=False) + ": " + inline(v) for k, v in o.items()) + " }"
    if isinstance(o, list):
        return "[" + ", ".join(inline(v) for v in o) + "]"
    return json.dumps(o, ensure_ascii=False)
def fmt(o, ind=0, key=None):
    pad = "  " * ind
    if isinstance(o, dict) and o:
        one = inline(o)
        if not (ind < 4 or key == 'responses'):
            return one
        items = []
        for k, v in o.items():
            items.append(pad + "  " + json.dumps(k, ensure_ascii=False) + ": " + fmt(v, ind + 1, k))
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    return inline(o)
d = json.load(open(sys.argv[1]))
print(fmt(d))
