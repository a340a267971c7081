
D
$00000000-0000-4000-8000-000000000011Ä¢ „°4annot-dispatcher*g-1Â
s-11c-injera*annotator-1108BæA large round injera covers a woven tray, its spongy surface full of small holes and pale grey-brown in colour. Portions of stew are spooned onto the injera in a ring: a dark red doro wat with a hard-boiled egg and a chicken drumstick in the middle of the tray, a yellow split lentil stew placed on the injera to its left, and small heaps of collard greens and shredded cabbage around the edge. Rolled-up pieces of extra injera lie along one side of the tray like folded napkins. A hand with a silver ring is tearing a piece from the edge of the injera near the lentil stew.HÄ¢ „°4¢x
c-injera"injera*injera bread2en-US:foodB 
doro watspooned ontoinjeraB 
lentil stew	placed oninjeraZg-1