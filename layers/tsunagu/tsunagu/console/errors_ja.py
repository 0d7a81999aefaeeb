"""Japanese wording of the refusals the console shows. The services' codes are stable and their
messages are in English for API callers; staff read these instead. A code not listed here shows a
generic sentence with its code, so nothing is hidden."""

from __future__ import annotations

from tsunagu.errors import DomainError

MESSAGES: dict[str, str] = {
    "not_found": "見つかりません。",
    "friend_not_found": "この友だちは見つかりません。",
    "member_not_found": "この会員番号の会員は登録されていません。",
    "link_not_found": "この連携は見つかりません(すでに解除されている可能性があります)。",
    "line_id_required": "回線の連携を解除するには回線IDを入力してください。",
    "batch_not_found": "この配信は見つかりません。",
    "batch_size": "一度に取り込める件数を超えています。ファイルを分けてください。",
    "csv_columns": "CSVの列見出しが正しくありません。",
    "csv_format": "CSVとして読み取れません。UTF-8またはShift_JISのCSVを選んでください。",
    "rows_rejected": "エラーのある行があるため、どの行も取り込んでいません。エラーを直してから取り込み直してください。",
    "coupon_not_found": "このクーポンは見つかりません。",
    "coupon_exists": "同じIDのクーポンがすでにあります。",
    "invalid_coupon": "クーポンの内容に誤りがあります。",
    "redemption_not_found": "この利用記録は見つかりません。",
    "redemption_conflict": "利用記録が同時に更新されました。もう一度お試しください。",
    "template_not_found": "このテンプレートは見つかりません。",
    "template_not_approved": "テンプレートが承認されていません。",
    "version_conflict": "ほかのスタッフが先に更新しました。画面を読み込み直してください。",
    "invoice_not_found": "この月の請求書はまだありません(月末の締め後に作成されます)。",
    "invalid_month": "月は YYYY-MM の形式で入力してください。",
    "invalid_date": "日付は YYYY-MM-DD の形式で入力してください。",
    "invalid_range": "期間の指定が正しくありません(開始日は終了日以前、366日以内)。",
    "invalid_limit": "件数の指定が正しくありません。",
    "validation_failed": "入力内容に誤りがあります。",
    "quota_exceeded": "今月の送信上限に達するため送信できません。",
    "channel_not_configured": "LINEチャネルが設定されていません。",
    "staff_exists": "このメールアドレスのスタッフはすでに登録されています。",
    "staff_not_found": "スタッフが見つかりません。",
    "last_admin": "管理者が一人もいなくなるため、この操作はできません。",
    "invalid_scope": "権限の指定が正しくありません。",
    "invalid_email": "メールアドレスの形式が正しくありません。",
    "weak_password": "パスワードが条件を満たしていません。",
    "invite_invalid": "招待リンクが無効か、有効期限が切れています。",
    "scope_required": "この操作を行う権限がありません。",
    "not_escalated": "この会話はオペレーター対応中ではありません(自動応答に戻っています)。",
    "conversation_changed": "ほかのスタッフが先にこの会話を更新しました。画面を読み込み直してください。",
    "unsupported_media_type": "この形式の送信は受け付けていません(フォームまたはCSVで送信してください)。",
    "invalid_encoding": "送信内容がUTF-8の文字ではありません。",
    "invalid_json": "送信内容を読み取れませんでした。",
}


def japanese(e: DomainError) -> str:
    if any("\u3040" <= ch <= "\u9fff" for ch in e.message):  # already Japanese (the console's own)
        return e.message
    if e.code in MESSAGES:
        return MESSAGES[e.code]
    return f"処理できませんでした(コード: {e.code})。"
