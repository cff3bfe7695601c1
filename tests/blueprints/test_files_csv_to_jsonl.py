"""files.csv-to-jsonl: called as a subflow on a CSV the caller wrote; the JSON lines read back."""

from __future__ import annotations

import json

from blueprint_harness import Plait, task_run
from plait.flows import State

CSV = (
    "Customer Name,E-mail,Amount\\nAda,ada@example.com,12.5\\n,,\\nBob,,3\\nCy,cy@example.com,7\\n"
)


async def test_a_csv_becomes_typed_json_lines(plait: Plait) -> None:
    execution = await plait.flow(
        f"""
        id: import_customers
        namespace: company.team
        tasks:
          - id: write
            type: plait.core.storage.Write
            extension: .csv
            content: "{CSV}"
          - id: convert
            type: plait.core.Subflow
            blueprint: files.csv-to-jsonl
            blueprintVersion: ">=1"
            inputs:
              file: "{{{{ outputs.write.uri }}}}"
              required_column: E-mail
        outputs:
          - id: uri
            type: STRING
            value: "{{{{ outputs.convert.outputs.uri }}}}"
        """
    )
    assert execution.state is State.SUCCESS, execution.error
    child = task_run(execution, "convert").outputs["outputs"]
    assert (child["rows"], child["rejected"]) == (2, 1)
    lines = (await plait.read(execution.outputs["uri"])).decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"customer_name": "Ada", "e_mail": "ada@example.com", "amount": 12.5},
        {"customer_name": "Cy", "e_mail": "cy@example.com", "amount": 7},
    ]
    # The blueprint ran as a flow of the caller's namespace.
    stored = await plait.repo.get_flow("company.team", "bp_files_csv-to-jsonl")
    assert stored is not None
