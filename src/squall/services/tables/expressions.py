"""DynamoDB's expression language: a lark grammar (``expressions.lark``, LALR) and the syntax tree built from it.

One grammar serves the five expression parameters (condition, filter and key condition share the
``condition`` start symbol; update; projection). Lark checks the syntax; :class:`Builder` then walks the
parse tree in reading order, resolving placeholders (``#n`` from ExpressionAttributeNames, ``:v`` from
ExpressionAttributeValues) and making the checks whose messages AWS words (function names, reserved
words, operand types and counts). Every placeholder used is recorded in a :class:`Placeholders`, so the
caller can report the unused ones after parsing all the expressions of a request, as AWS does. Syntax
errors quote the offending token with its neighbours, as AWS's do, using :func:`tokenize`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.parsers.lalr_analysis import Shift
from lark.parsers.lalr_interactive_parser import InteractiveParser

from squall.services.tables.errors import Validation
from squall.services.tables.reserved import RESERVED_WORDS
from squall.services.tables.types import SET_TYPES, Value, order, type_of

PathElement = str | int
COMPARATORS = ("=", "<>", "<", "<=", ">", ">=")
CONDITION_FUNCTIONS = ("attribute_exists", "attribute_not_exists", "attribute_type", "begins_with", "contains")
UPDATE_FUNCTIONS = ("if_not_exists", "list_append")
_ARITY = {
    "attribute_exists": 1,
    "attribute_not_exists": 1,
    "attribute_type": 2,
    "begins_with": 2,
    "contains": 2,
    "size": 1,
    "if_not_exists": 2,
    "list_append": 2,
}
_PUNCTUATION = ("<=", ">=", "<>", "=", "<", ">", "(", ")", "[", "]", ",", ".", "+", "-")
#: How ADD/DELETE name a wrong operand type in their error message.
TYPE_WORDS = {"S": "STRING", "N": "NUMBER", "B": "BINARY", "BOOL": "BOOLEAN", "NULL": "NULL", "M": "MAP", "L": "LIST"}


# --- the syntax tree ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Path:
    """A document path: attribute names and list indexes."""

    elements: tuple[PathElement, ...]

    def show(self) -> str:
        """The path as AWS prints it in messages: ``[a, b, [0]]``."""
        return "[" + ", ".join(f"[{e}]" if isinstance(e, int) else e for e in self.elements) + "]"


@dataclass(frozen=True, slots=True)
class Literal:
    """A value from ExpressionAttributeValues."""

    name: str
    value: Value


@dataclass(frozen=True, slots=True)
class Size:
    operand: Operand


Operand = Path | Literal | Size


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Operand
    right: Operand


@dataclass(frozen=True, slots=True)
class Between:
    subject: Operand
    low: Operand
    high: Operand


@dataclass(frozen=True, slots=True)
class In:
    subject: Operand
    options: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    args: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class And:
    left: Condition
    right: Condition


@dataclass(frozen=True, slots=True)
class Or:
    left: Condition
    right: Condition


@dataclass(frozen=True, slots=True)
class Not:
    inner: Condition


Condition = Compare | Between | In | Function | And | Or | Not


@dataclass(frozen=True, slots=True)
class IfNotExists:
    path: Path
    default: Term


@dataclass(frozen=True, slots=True)
class ListAppend:
    left: Term
    right: Term


@dataclass(frozen=True, slots=True)
class Arithmetic:
    op: str
    left: Term
    right: Term


Term = Path | Literal | IfNotExists | ListAppend
SetValue = Path | Literal | IfNotExists | ListAppend | Arithmetic


@dataclass(frozen=True, slots=True)
class Action:
    """One update action: ``kind`` is SET, REMOVE, ADD or DELETE; ``value`` is None for REMOVE."""

    kind: str
    path: Path
    value: SetValue | None = None


@dataclass(frozen=True, slots=True)
class Update:
    actions: tuple[Action, ...]


# --- placeholders -----------------------------------------------------------------------------------
@dataclass
class Placeholders:
    """ExpressionAttributeNames/Values of one request and which of them the expressions used."""

    names: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Value] = field(default_factory=dict)
    used_names: set[str] = field(default_factory=set)
    used_values: set[str] = field(default_factory=set)

    def check_all_used(self) -> None:
        """ValidationException naming the placeholders no expression used."""
        unused_names = sorted(set(self.names) - self.used_names)
        if unused_names:
            keys = ", ".join(unused_names)
            raise Validation(f"Value provided in ExpressionAttributeNames unused in expressions: keys: {{{keys}}}")
        unused_values = sorted(set(self.values) - self.used_values)
        if unused_values:
            keys = ", ".join(unused_values)
            raise Validation(f"Value provided in ExpressionAttributeValues unused in expressions: keys: {{{keys}}}")


# --- tokens -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Lexeme:
    """A token as AWS's messages quote it (syntax errors name a token and its neighbours)."""

    kind: str  # "name", "#", ":", "digits", "eof" or the punctuation itself
    text: str
    start: int
    end: int


def tokenize(text: str) -> list[Lexeme]:
    """The tokens of ``text`` as AWS's messages see them; an unknown character is a one-character token."""
    tokens: list[Lexeme] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c in "#:":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            tokens.append(Lexeme(c, text[i:j], i, j))
            i = j
            continue
        if c.isalpha() or c == "_":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            tokens.append(Lexeme("name", text[i:j], i, j))
            i = j
            continue
        if c.isdigit():
            j = i + 1
            while j < n and text[j].isdigit():
                j += 1
            tokens.append(Lexeme("digits", text[i:j], i, j))
            i = j
            continue
        for p in _PUNCTUATION:
            if text.startswith(p, i):
                tokens.append(Lexeme(p, p, i, i + len(p)))
                i += len(p)
                break
        else:
            tokens.append(Lexeme("?", c, i, i + 1))
            i += 1
    tokens.append(Lexeme("eof", "<EOF>", n, n))
    return tokens


# --- the parser -------------------------------------------------------------------------------------
_GRAMMAR = Lark.open(
    "expressions.lark",
    rel_to=__file__,
    parser="lalr",
    start=["condition", "update", "projection"],
    propagate_positions=True,
)


class Builder:
    """Turns the parse tree of one expression parameter (``kind`` names it in error messages) into the
    syntax tree, resolving placeholders and making AWS's checks in the order a reader meets them."""

    def __init__(self, text: str, kind: str, placeholders: Placeholders) -> None:
        self.text = text
        self.kind = kind
        self.placeholders = placeholders
        self._sections: set[str] = set()
        self._read: list[Token] = []  # the tokens taken so far
        #: Function calls of conditions being read: where each ends -> where it starts, whether it opens a condition.
        self._calls: dict[int, tuple[int, bool]] = {}
        self._read_calls: list[tuple[int, int, bool]] = []  # (start, end, opens a condition)

    def error(self, message: str) -> Validation:
        return Validation(f"Invalid {self.kind}: {message}")

    def syntax_error(self, position: int) -> Validation:
        """AWS's syntax error for the token at (or first after) ``position``, quoted with its neighbours."""
        tokens = tokenize(self.text)
        index = next(i for i, t in enumerate(tokens) if t.start >= position or t.kind == "eof")
        token = tokens[index]
        before = tokens[index - 1] if index > 0 else token
        after = tokens[min(index + 1, len(tokens) - 1)]
        # At the end there is no next token.
        end = before.end if token.kind == "eof" else (token.end if after.kind == "eof" else after.end)
        return self.error(f'Syntax error; token: "{token.text}", near: "{self.text[before.start : end]}"')

    def parse(self, start: str) -> Tree[Token]:
        if not self.text.strip():
            raise self.error("The expression can not be empty;")
        # Token by token, so that a bad name or placeholder is reported where a reader meets it: before
        # any syntax error further on, as AWS does.
        interactive = _GRAMMAR.parse_interactive(self.text, start=start)
        last = None
        try:
            for token in interactive.iter_parse():
                self.check_follower(last, token.type, token.start_pos or 0)
                if token.type in _CHECKED and _takes(interactive, token.type):
                    try:
                        self.check_token(token, interactive.choices())  # type: ignore[no-untyped-call]
                    except Validation:
                        self.check_calls()
                        raise
                self._read.append(token)
                last = token
            self.check_follower(last, "$END", len(self.text))
            tree: Tree[Token] = interactive.feed_eof(last)  # type: ignore[no-untyped-call]
            return tree
        except UnexpectedToken as exc:
            position = exc.token.start_pos if exc.token.type != "$END" else None
            position = len(self.text) if position is None else position
            self.check_follower(last, exc.token.type, position)
            self.check_calls()
            raise self.syntax_error(position) from None
        except UnexpectedCharacters as exc:
            position = int(exc.pos_in_stream or 0)
            self.check_follower(last, "", position)
            self.check_calls()
            raise self.syntax_error(position) from None
        except UnexpectedInput:
            raise self.syntax_error(len(self.text)) from None

    def check_follower(self, last: Token | None, kind: str, position: int) -> None:
        """Once a function call is read: a call that opens a condition must be compared if and only if it
        is size() (anything else is a condition itself), so what follows it (``kind`` at ``position``) may
        be a syntax error, reported after the call's own checks."""
        if last is None or last.end_pos not in self._calls:
            return
        start, opens_condition = self._calls.pop(last.end_pos)
        self._read_calls.append((start, last.end_pos, opens_condition))
        name = self.text[start:].split("(", 1)[0].strip()
        if opens_condition and (kind in ("COMPARATOR", "EQUAL", "BETWEEN", "IN")) != (name == "size"):
            self.check_calls()
            raise self.syntax_error(position)

    def check_calls(self) -> None:
        """Before reporting an error found further on: the checks of the function calls read so far (a
        reader meets them first). Without an error they are left to the walk of the finished tree."""
        for start, end, opens_condition in self._read_calls:
            tree = _GRAMMAR.parse(self.text[start:end], start="condition")
            call = next(tree.find_data("call"))
            if opens_condition and str(call.children[0]) != "size":
                self.function(call)
            else:
                self.operand(call)

    def check_token(self, token: Token, expected: Mapping[str, object]) -> None:
        """The checks of a name, placeholder or section the parser takes next (``expected``: what it can take)."""
        if token.type in ("SET", "REMOVE", "ADD", "DELETE"):
            section = str(token).upper()
            if section in self._sections:
                raise self.error(f'The "{section}" section can only be used once in an update expression;')
            self._sections.add(section)
        elif token.type == "VALUE":
            literal = self.literal(token)
            sections = [str(t).upper() for t in self._read if t.type in ("SET", "REMOVE", "ADD", "DELETE")]
            if sections and sections[-1] in ("ADD", "DELETE"):
                self.check_set_operand(sections[-1], literal)
            self.check_operands(token)
        elif token.type == "NAME_PLACEHOLDER":
            self.path_name(token)
            self.check_operands(token)
        elif token.type == "NAME":
            name = str(token)
            if not self.text[token.end_pos or 0 :].lstrip().startswith("("):
                self.path_name(token)
                self.check_operands(token)
            elif "update_call" in expected:
                self.check_update_function(name)
            elif "NOT" in expected:
                if name != "size":
                    self.check_condition_function(name)
                closing = self.closing_parenthesis(token.end_pos or 0)
                if closing is not None:
                    self._calls[closing] = (token.start_pos or 0, True)
            elif "call" in expected:
                self.check_operand_function(name)
                closing = self.closing_parenthesis(token.end_pos or 0)
                if closing is not None:
                    self._calls[closing] = (token.start_pos or 0, False)
            else:
                self.path_name(token)

    def check_operands(self, token: Token) -> None:
        """The type checks of an ordering comparison or of SET's arithmetic, made as its second operand
        is read: a literal must be a scalar (a number for arithmetic), the first operand checked first."""
        operator = self._read[-1] if self._read else None
        if operator is None or operator.type not in ("COMPARATOR", "ARITHMETIC") or str(operator) == "<>":
            return
        allowed = ("N",) if operator.type == "ARITHMETIC" else ("S", "N", "B")
        first = self._read[-2] if len(self._read) > 1 else None
        if first is not None and first.type == "VALUE":
            self.check_literal_type(self.literal(first), str(operator), allowed)
        if token.type == "VALUE":
            self.check_literal_type(self.literal(token), str(operator), allowed)

    def closing_parenthesis(self, after: int) -> int | None:
        """Where the parenthesis opened after ``after`` closes (its end offset), if it does."""
        depth = 0
        for lexeme in tokenize(self.text):
            if lexeme.start < after:
                continue
            depth += {"(": 1, ")": -1}.get(lexeme.kind, 0)
            if depth == 0:
                return lexeme.end
        return None

    def check_condition_function(self, name: str) -> None:
        if name not in CONDITION_FUNCTIONS:
            if name in UPDATE_FUNCTIONS:
                raise self.error(f"The function is not allowed in a condition expression; function: {name}")
            raise self.error(f"Invalid function name; function: {name}")

    def check_operand_function(self, name: str) -> None:
        if name == "size":
            return
        if name in CONDITION_FUNCTIONS:
            raise self.error(f"The function is not allowed to be used this way in an expression; function: {name}")
        raise self.error(f"Invalid function name; function: {name}")

    def check_update_function(self, name: str) -> None:
        if name not in UPDATE_FUNCTIONS:
            if name in CONDITION_FUNCTIONS or name == "size":
                raise self.error(f"The function is not allowed in a update expression; function: {name}")
            raise self.error(f"Invalid function name; function: {name}")

    # entry points
    def condition(self) -> Condition:
        return self.disjunction(self.parse("condition"))

    def projection(self) -> list[Path]:
        paths = [self.path(child) for child in _trees(self.parse("projection"))]
        check_overlaps(paths, self.error)
        return paths

    def update(self) -> Update:
        actions: list[Action] = []
        seen: set[str] = set()
        for section in _trees(self.parse("update")):
            keyword, *members = section.children
            name = str(keyword).upper()
            if name in seen:
                raise self.error(f'The "{name}" section can only be used once in an update expression;')
            seen.add(name)
            if name == "SET":
                actions += [self.set_action(_tree(m)) for m in members]
            elif name == "REMOVE":
                actions += [Action("REMOVE", self.path(_tree(m))) for m in members]
            else:
                for path, value in zip(members[::2], members[1::2], strict=True):
                    actions.append(self.add_or_delete(name, self.path(_tree(path)), _token(value)))
        check_overlaps([a.path for a in actions], self.error)
        return Update(tuple(actions))

    # conditions
    def disjunction(self, tree: Tree[Token]) -> Condition:
        parts = _trees(tree)
        result = self.conjunction(parts[0])
        for part in parts[1:]:
            result = Or(result, self.conjunction(part))
        return result

    def conjunction(self, tree: Tree[Token]) -> Condition:
        parts = _trees(tree)
        result = self.negation(parts[0])
        for part in parts[1:]:
            result = And(result, self.negation(part))
        return result

    def negation(self, tree: Tree[Token]) -> Condition:
        kind = tree.data
        if kind == "not_":
            return Not(self.negation(_trees(tree)[0]))
        if kind == "group":
            return self.disjunction(_trees(tree)[0])
        if kind == "function":
            return self.function(_trees(tree)[0])
        operands = _trees(tree)
        subject_tree = operands[0]
        if subject_tree.data == "call" and str(subject_tree.children[0]) != "size":
            # A function at the start of a condition is a condition itself: no comparator may follow it.
            self.function(subject_tree)
            raise self.syntax_error(_end(subject_tree))
        if kind == "compare":
            op = str(next(c for c in tree.children if isinstance(c, Token)))
            subject, right = self.operand(operands[0]), self.operand(operands[1])
            if op not in ("=", "<>"):
                for side in (subject, right):
                    self.check_literal_type(side, op, ("S", "N", "B"))
            return Compare(op, subject, right)
        if kind == "between":
            subject, low, high = (self.operand(o) for o in operands)
            self.check_bounds(low, high)
            return Between(subject, low, high)
        subject = self.operand(operands[0])
        options = [self.operand(o) for o in operands[1:]]
        if len(options) > 100:
            raise self.error(
                f"The IN operator is provided with too many operands; number of operands: {len(options)}"
            )  # unverified: wording from memory of AWS's message
        return In(subject, tuple(options))

    def check_bounds(self, low: Operand, high: Operand) -> None:
        if isinstance(low, Literal) and isinstance(high, Literal) and order(low.value, high.value) == 1:
            raise self.error(
                "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; "
                f"lower bound operand: AttributeValue: {_show(low.value)}, upper bound operand: "
                f"AttributeValue: {_show(high.value)}"
            )

    def function(self, call: Tree[Token]) -> Function:
        name = str(call.children[0])
        if name == "size":
            # size() is an operand, never a condition: what follows it should have been a comparator.
            self.operand(call)
            raise self.syntax_error(_end(call))
        self.check_condition_function(name)
        args = self.arguments(name, call)
        if name != "contains" and not isinstance(args[0], Path):
            raise self.error(f"Operator or function requires a document path; operator or function: {name}")
        if name == "attribute_type":
            kind = args[1]
            if not isinstance(kind, Literal) or type_of(kind.value) != "S":
                raise self.error(
                    "Incorrect operand type for operator or function; operator or function: attribute_type, "
                    f"operand type: {_operand_type(kind)}"
                )
            if kind.value["S"] not in ("S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"):
                raise self.error(
                    f"Invalid attribute type name found; type: {kind.value['S']}, "
                    "valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}"
                )
        if name == "begins_with":
            for arg in args:
                self.check_literal_type(arg, name, ("S", "B"))
        return Function(name, tuple(args))

    def arguments(self, name: str, call: Tree[Token]) -> list[Operand]:
        args = [self.operand(child) for child in _trees(call)]
        if len(args) != _ARITY[name]:
            raise self.error(
                f"Incorrect number of operands for operator or function; operator or function: {name}, "
                f"number of operands: {len(args)}"
            )
        return args

    def check_literal_type(self, operand: Operand | Term, op: str, allowed: tuple[str, ...]) -> None:
        if isinstance(operand, Literal) and type_of(operand.value) not in allowed:
            raise self.error(
                f"Incorrect operand type for operator or function; operator or function: {op}, "
                f"operand type: {type_of(operand.value)}"
            )

    def operand(self, tree: Tree[Token]) -> Operand:
        if tree.data == "value":
            return self.literal(_token(tree.children[0]))
        if tree.data == "call":
            name = str(tree.children[0])
            if name == "size":
                (arg,) = self.arguments("size", tree)
                if isinstance(arg, Literal) and type_of(arg.value) in ("N", "BOOL", "NULL"):
                    raise self.error(
                        "Incorrect operand type for operator or function; operator or function: size, "
                        f"operand type: {type_of(arg.value)}"
                    )
                return Size(arg)
            self.check_operand_function(name)
        return self.path(tree)

    def literal(self, token: Token) -> Literal:
        name = str(token)
        if name not in self.placeholders.values:
            raise self.error(
                f"An expression attribute value used in expression is not defined; attribute value: {name}"
            )
        self.placeholders.used_values.add(name)
        return Literal(name, self.placeholders.values[name])

    def path(self, tree: Tree[Token]) -> Path:
        elements: list[PathElement] = []
        for child in tree.children:
            if isinstance(child, Tree):
                elements.append(self.path_name(_token(child.children[0])))
            else:
                elements.append(int(child))
        return Path(tuple(elements))

    def path_name(self, token: Token) -> str:
        text = str(token)
        if token.type == "NAME_PLACEHOLDER":
            if text not in self.placeholders.names:
                raise self.error(
                    f"An expression attribute name used in the document path is not defined; attribute name: {text}"
                )
            self.placeholders.used_names.add(text)
            return self.placeholders.names[text]
        if text.upper() in RESERVED_WORDS:
            raise self.error(f"Attribute name is a reserved keyword; reserved keyword: {text}")
        return text

    # updates
    def add_or_delete(self, section: str, path: Path, token: Token) -> Action:
        value = self.literal(token)
        self.check_set_operand(section, value)
        return Action(section, path, value)

    def check_set_operand(self, section: str, value: Literal) -> None:
        kind = type_of(value.value)
        allowed = ("N", *SET_TYPES) if section == "ADD" else tuple(SET_TYPES)
        if kind not in allowed:
            # The ADD text is AWS's (seen in real error reports); DELETE's typeSet name is by analogy.
            raise self.error(
                f"Incorrect operand type for operator or function; operator: {section}, "
                f"operand type: {TYPE_WORDS.get(kind, kind)}, typeSet: ALLOWED_FOR_{section}_OPERAND"
            )

    def set_action(self, tree: Tree[Token]) -> Action:
        path_tree, _, *rest = tree.children
        path = self.path(_tree(path_tree))
        left = self.term(_tree(rest[0]))
        if len(rest) == 1:
            return Action("SET", path, left)
        op, right = str(rest[1]), self.term(_tree(rest[2]))
        for side in (left, right):
            self.check_literal_type(side, op, ("N",))
        return Action("SET", path, Arithmetic(op, left, right))

    def term(self, tree: Tree[Token]) -> Term:
        if tree.data == "value":
            return self.literal(_token(tree.children[0]))
        if tree.data != "update_call":
            return self.path(tree)
        name = str(tree.children[0])
        self.check_update_function(name)
        args = _trees(tree)
        first = self.term(args[0])
        second = self.term(args[1])
        if len(args) > 2:
            for extra in args[2:]:
                self.term(extra)
            raise self.error(
                f"Incorrect number of operands for operator or function; operator or function: {name}, "
                f"number of operands: {len(args)}"
            )
        if name == "if_not_exists":
            if not isinstance(first, Path):
                raise self.error(f"Operator or function requires a document path; operator or function: {name}")
            return IfNotExists(first, second)
        for side in (first, second):
            if isinstance(side, Literal) and type_of(side.value) != "L":
                raise self.error(
                    "Incorrect operand type for operator or function; operator or function: list_append, "
                    f"operand type: {type_of(side.value)}"
                )
        return ListAppend(first, second)


#: The tokens checked as they are read.
_CHECKED = frozenset({"NAME", "NAME_PLACEHOLDER", "VALUE", "SET", "REMOVE", "ADD", "DELETE"})


def _takes(interactive: InteractiveParser, kind: str) -> bool:
    """Whether the parser takes a token of ``kind`` next. LALR states merge lookaheads, so a token its
    current state lists may still be refused after a reduction: this runs the reductions on a copy of the
    state stack (as lark's own ``accepts()`` does on a copy of the parser)."""
    states = interactive.parser_state.parse_conf.states
    stack = list(interactive.parser_state.state_stack)
    while True:
        action = states[stack[-1]].get(kind)
        if action is None:
            return False
        what, rule = action
        if what is Shift:
            return True
        if rule.expansion:
            del stack[-len(rule.expansion) :]
        stack.append(states[stack[-1]][rule.origin.name][1])


def _trees(tree: Tree[Token]) -> list[Tree[Token]]:
    """The subtrees among a node's children (keyword and punctuation tokens left out)."""
    return [child for child in tree.children if isinstance(child, Tree)]


def _tree(node: Tree[Token] | Token) -> Tree[Token]:
    assert isinstance(node, Tree)
    return node


def _token(node: Tree[Token] | Token) -> Token:
    assert isinstance(node, Token)
    return node


def _end(tree: Tree[Token]) -> int:
    return int(tree.meta.end_pos)


def check_overlaps(paths: list[Path], make: Callable[[str], Validation] = Validation) -> None:
    """ValidationException if two paths overlap (one is a prefix of the other) or conflict (one uses a
    map key where the other uses a list index)."""
    for i, one in enumerate(paths):
        for two in paths[i + 1 :]:
            for a, b in zip(one.elements, two.elements, strict=False):
                if a == b and type(a) is type(b):
                    continue
                if isinstance(a, int) != isinstance(b, int):
                    raise make(
                        "Two document paths conflict with each other; must remove or rewrite one of these paths; "
                        f"path one: {one.show()}, path two: {two.show()}"
                    )
                break
            else:
                raise make(
                    "Two document paths overlap with each other; must remove or rewrite one of these paths; "
                    f"path one: {one.show()}, path two: {two.show()}"
                )


def _show(value: Value) -> str:
    kind = type_of(value)
    return f"{{{kind}:{value[kind]}}}"


def _operand_type(operand: Operand) -> str:
    if isinstance(operand, Literal):
        return type_of(operand.value)
    return "path"


# --- convenience --------------------------------------------------------------------------------------
def parse_condition(text: str, kind: str, placeholders: Placeholders) -> Condition:
    return Builder(text, kind, placeholders).condition()


def parse_update(text: str, placeholders: Placeholders) -> Update:
    return Builder(text, "UpdateExpression", placeholders).update()


def parse_projection(text: str, placeholders: Placeholders) -> list[Path]:
    return Builder(text, "ProjectionExpression", placeholders).projection()
