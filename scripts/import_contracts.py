"""A contract type for import-linter (pyproject.toml's [tool.importlinter]): no import cycle at all.

`acyclic_modules`: no module of the root packages imports itself back, directly or through
others — at the level of modules, imports inside functions and under TYPE_CHECKING included.
import-linter's own `acyclic_siblings` squashes each subpackage into one node, so it would also
refuse two packages that merely use each other's modules (flow's screens use callauth's service,
callauth's service reads flow rows) without any module cycle; the layers contract already says
which way packages point.

Options: `ignore_imports` (as in the built-in contracts: "importer -> imported" expressions;
an expression that no longer matches any import is an error, so a removed cycle's entry is dropped).
"""
from __future__ import annotations

from grimp import ImportGraph
from importlinter.application import contract_utils, output
from importlinter.application.contract_utils import AlertLevel
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def strongly_connected(graph: ImportGraph) -> list[list[str]]:
    """The import graph's strongly connected components of two or more modules (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[module] = min(low[module], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return sorted(components)


class AcyclicModulesContract(Contract):
    ignore_imports = fields.SetField(subfield=fields.ImportExpressionField(), required=False)
    unmatched_ignore_imports_alerting = fields.EnumField(AlertLevel, default=AlertLevel.ERROR)

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        removal = contract_utils.remove_ignored_imports_and_report(
            graph=graph, ignore_imports=self.ignore_imports,  # type: ignore[arg-type]
            unmatched_alerting=self.unmatched_ignore_imports_alerting)  # type: ignore[arg-type]
        cycles = []
        for component in strongly_connected(graph):
            first = component[0]
            # One cycle through the component's first module: its shortest way out and back.
            back = min((graph.find_shortest_chain(importer=other, imported=first) or ()
                        for other in graph.find_modules_directly_imported_by(first) if other in component),
                       key=len, default=())
            cycles.append({"modules": component, "cycle": [first, *back]})
        return ContractCheck(kept=not cycles, warnings=list(removal.warnings),
                             ignored_import_count=removal.ignored_import_count,
                             metadata={"cycles": cycles})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["cycles"]:
            output.print_error(f"{len(cycle['modules'])} modules import each other in a cycle:")
            output.print(" -> ".join(cycle["cycle"]))
            output.print("(all of them: " + ", ".join(cycle["modules"]) + ")")
            output.new_line()
