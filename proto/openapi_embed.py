#!/usr/bin/env python3
# openapi_embed.py -- converts proto/openapi.yaml to JSON at build time and
# writes it as a C string (dre_openapi_json) for the gateway's GET
# /openapi.json. Usage: openapi_embed.py openapi.yaml out.json out.c
import json
import sys

import yaml


class Loader(yaml.SafeLoader):
    """YAML 1.1 without implicit timestamps: an unquoted 2026-01-01 stays a
    string, as JSON has no dates."""


Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def main():
    src, out_json, out_c = sys.argv[1:4]
    with open(src, encoding="utf-8") as f:
        doc = yaml.load(f, Loader=Loader)
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    data = text.encode("utf-8")
    with open(out_json, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    rows = [",".join("0x%02x" % b for b in data[i:i + 16])
            for i in range(0, len(data), 16)]
    with open(out_c, "w", encoding="utf-8") as f:
        f.write("// generated from proto/openapi.yaml -- do not edit\n"
                "#include <stddef.h>\n"
                "extern const char dre_openapi_json[];\n"
                "extern const size_t dre_openapi_json_len;\n"
                "const char dre_openapi_json[] = {\n%s,\n0x00};\n"
                "const size_t dre_openapi_json_len = %d;\n"
                % (",\n".join(rows), len(data)))


if __name__ == "__main__":
    main()
