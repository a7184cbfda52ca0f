"""Validates the STIX 2.1 objects of a TAXII envelope (a JSON file: {"objects": [...]}) with the
OASIS validator (stix2-validator), as one bundle. Prints every error; exit status 0 when valid."""
import json
import sys
import uuid

from stix2validator import ValidationOptions, validate_instance

objects = json.load(open(sys.argv[1]))["objects"]
bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}
result = validate_instance(bundle, ValidationOptions(version="2.1"))
for r in getattr(result, "object_results", [result]):
    for e in r.errors:
        print(f"ERROR {r.object_id}: {e}")
print(f"{len(objects)} objects, valid={result.is_valid}")
sys.exit(0 if result.is_valid else 1)
